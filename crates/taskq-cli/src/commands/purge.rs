//! `taskq purge`

use std::time::Duration;

use serde_json::json;
use taskq::{Queue, State};

use super::{parse_duration, parse_state};
use crate::failure::Failure;
use crate::output::{count, Output};

/// Delete finished tasks (failed, or succeeded when retained) that
/// finished at least --older-than ago.
///
/// Example: taskq purge --state failed --older-than 7d
#[derive(Debug, clap::Args)]
pub struct Args {
    /// failed or succeeded.
    #[arg(long, value_parser = parse_state)]
    pub state: State,
    /// Only tasks that finished at least this long ago, like 7d or 12h.
    #[arg(long, value_parser = parse_duration, allow_hyphen_values = true)]
    pub older_than: Duration,
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let purged = queue.purge(args.state, args.older_than).await?;
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
