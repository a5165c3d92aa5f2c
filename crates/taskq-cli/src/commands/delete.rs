//! `taskq delete`

use serde_json::json;
use taskq::{Queue, TaskId};

use super::parse_id;
use crate::failure::Failure;
use crate::output::Output;

/// Delete a task in any state. A worker running it is refused when it
/// finishes.
///
/// Example: taskq delete 42
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task's id.
    #[arg(value_parser = parse_id)]
    pub id: TaskId,
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    queue.delete(args.id).await?;
    if out.json {
        out.json(&json!({"deleted": args.id.0}))
    } else {
        out.line(format!("task {} deleted", args.id))
    }
}
