//! `taskq purge`

use std::time::Duration;

use serde_json::json;
use taskq::{Queue, State};

use super::{parse_duration, parse_state};
use crate::failure::Failure;
use crate::output::{count, Output};

/// Delete finished tasks (failed, cancelled, or succeeded when retained)
/// that finished at least --older-than ago. Running workers also do this
/// on their own after each state's retention (see `taskq work --help`).
///
/// Example: taskq purge --state failed --older-than 7d
#[derive(Debug, clap::Args)]
pub struct Args {
    /// failed, cancelled or succeeded.
    #[arg(long, value_parser = parse_state)]
    pub state: State,
    /// Only tasks that finished at least this long ago, like 7d or 12h.
    #[arg(long, value_parser = parse_duration, allow_hyphen_values = true)]
    pub older_than: Duration,
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    // In batches, so that no transaction holds up the workers for long.
    let mut purged = 0;
    loop {
        let batch = taskq::MAX_PURGE_BATCH;
        let n = queue
            .purge_batch(args.state, args.older_than, batch)
            .await?;
        purged += n;
        if n < u64::from(batch) {
            break;
        }
    }
    if out.json {
        out.json(&json!({"purged": purged}))
    } else {
        let what = format!("{} task", args.state);
        out.line(format!(
            "purged {}",
            count(purged, &what, &format!("{what}s"))
        ))
    }
}
