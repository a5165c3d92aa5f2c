//! `taskq requeue-expired`

use serde_json::json;
use taskq::Queue;

use crate::failure::Failure;
use crate::output::{count, Output};

/// Requeue every task whose lease expired (or fail it, if that was its
/// last try) and print how many moved.
///
/// Claims do this by themselves; this makes expired tasks show up as
/// queued in `stats` and `len` sooner.
///
/// Example: taskq requeue-expired
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let moved = queue.requeue_expired().await?;
    if out.json {
        out.json(&json!({"requeued": moved}))
    } else {
        out.line(format!("requeued {}", count(moved, "task", "tasks")))
    }
}
