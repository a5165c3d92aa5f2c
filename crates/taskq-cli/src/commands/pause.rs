//! `taskq pause`

use serde_json::json;
use taskq::Queue;

use crate::failure::Failure;
use crate::output::Output;

/// Pause an action for every worker on every machine: nothing of it is
/// claimed until `taskq resume`. Running tasks finish; enqueues still work.
///
/// Example: taskq pause email
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The action to pause.
    pub action: String,
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let changed = queue.pause(&args.action).await?;
    if out.json {
        return out.json(&json!({"action": args.action, "paused": true, "changed": changed}));
    }
    out.line(if changed {
        format!(
            "{} is paused: workers claim none of its tasks until it is resumed",
            args.action
        )
    } else {
        format!("{} was already paused", args.action)
    })
}
