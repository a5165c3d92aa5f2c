//! `taskq retry`

use serde_json::json;
use taskq::{ListOptions, Queue, RetryKey, State, TaskId};

use super::parse_id;
use crate::failure::Failure;
use crate::output::{count, Output};

/// Queue failed or cancelled tasks again, with their tries reset, to run
/// now (or to wait, for a task whose dependencies have not all finished). A task keeps its unique key unless told otherwise; if another task
/// holds that key now, the retry is refused (exit code 4).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  taskq retry 42\n  taskq retry 42 --new-key customer:42:again\n  taskq retry 42 --with-dependents\n  taskq retry --action email --failed\n  taskq retry --action email --cancelled"
)]
pub struct Args {
    /// The failed or cancelled task to retry.
    #[arg(value_parser = parse_id, required_unless_present = "action", conflicts_with = "action")]
    pub id: Option<TaskId>,
    /// Retry every failed (--failed) or cancelled (--cancelled) task of
    /// this action.
    #[arg(long)]
    pub action: Option<String>,
    /// With --action: retry the tasks that failed for good.
    #[arg(long, requires = "action", required_unless_present_any = ["id", "cancelled"])]
    pub failed: bool,
    /// With --action: retry the cancelled tasks.
    #[arg(long, requires = "action", conflicts_with = "failed")]
    pub cancelled: bool,
    /// Give the task this unique key instead of its own.
    #[arg(long, requires = "id", conflicts_with = "clear_key")]
    pub new_key: Option<String>,
    /// Take the task's unique key away.
    #[arg(long, requires = "id")]
    pub clear_key: bool,
    /// Also make the tasks that waited for it and were cancelled when it
    /// failed wait for it again, down the workflow (those another failed
    /// dependency cancelled too stay cancelled).
    #[arg(long, requires = "id", conflicts_with_all = ["new_key", "clear_key"])]
    pub with_dependents: bool,
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    if let Some(id) = args.id {
        let key = match (args.new_key, args.clear_key) {
            (Some(key), _) => RetryKey::Replace(key),
            (None, true) => RetryKey::Clear,
            (None, false) => RetryKey::Keep,
        };
        if args.with_dependents {
            queue.retry_with_dependents(id).await?;
        } else {
            queue.retry_with(id, key).await?;
        }
        return if out.json {
            out.json(&json!({"retried": [id.0]}))
        } else {
            out.line(format!("task {id} is queued again"))
        };
    }
    let action = args.action.unwrap_or_default();
    let state = if args.cancelled {
        State::Cancelled
    } else {
        State::Failed
    };
    let filter = ListOptions {
        action: Some(action.clone()),
        state: Some(state),
        ..ListOptions::default()
    };
    let done = queue.retry_matching(&filter).await?;
    let ids = |ids: &[TaskId]| ids.iter().map(|id| id.0).collect::<Vec<_>>();
    let (retried, refused) = (ids(&done.retried), ids(&done.refused_for_their_key));
    if out.json {
        return out.json(&json!({"retried": retried, "refused_for_their_key": refused}));
    }
    let n = retried.len() as u64;
    let verb = if n == 1 { "is" } else { "are" };
    let (one, many) = match state {
        State::Cancelled => ("cancelled task", "cancelled tasks"),
        _ => ("failed task", "failed tasks"),
    };
    out.line(format!(
        "{} of {action} {verb} queued again",
        count(n, one, many)
    ))?;
    if !refused.is_empty() {
        out.line(format!(
            "{} stayed: another task holds its unique key ({})",
            count(refused.len() as u64, "task", "tasks"),
            refused
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
    }
    Ok(())
}
