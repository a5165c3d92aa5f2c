//! `taskq resume`

use serde_json::json;
use taskq::Queue;

use crate::failure::Failure;
use crate::output::Output;

/// Resume a paused action: workers claim its tasks again at once.
///
/// Example: taskq resume email
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The action to resume.
    pub action: String,
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let changed = queue.resume(&args.action).await?;
    if out.json {
        return out.json(&json!({"action": args.action, "paused": false, "changed": changed}));
    }
    out.line(if changed {
        format!("{} is resumed", args.action)
    } else {
        format!("{} was not paused", args.action)
    })
}
