//! `taskq migrate`

use serde_json::json;
use taskq::Queue;

use crate::failure::Failure;
use crate::output::Output;

/// Create or upgrade taskq's tables (other commands do it too when needed).
///
/// Safe to run many times and from several machines at once. Refuses a
/// database whose schema was written by a newer taskq.
///
/// Example: taskq --database postgres://app@db/app migrate
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    queue.migrate().await?;
    if out.json {
        out.json(&json!({"migrated": true}))
    } else {
        out.line("the schema is up to date")
    }
}
