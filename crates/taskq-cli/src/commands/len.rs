//! `taskq len`

use serde_json::json;
use taskq::Queue;

use crate::failure::Failure;
use crate::output::Output;

/// Print how many tasks of an action are ready to run now.
///
/// Counts queued tasks whose time has come and tasks whose lease expired;
/// not tasks scheduled for later, running, or failed. A plain read.
///
/// Example: taskq len email
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The action (queue name).
    pub action: String,
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let ready = queue.len(&args.action).await?;
    if out.json {
        out.json(&json!({"action": args.action, "ready": ready}))
    } else {
        out.line(ready)
    }
}
