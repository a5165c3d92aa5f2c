//! `taskq retry`

use serde_json::json;
use taskq::{ListOptions, Queue, RetryKey, State, TaskId};

use super::parse_id;
use crate::failure::Failure;
use crate::output::{count, Output};

/// Queue failed or cancelled tasks again, with their tries reset, to run
/// now. A task keeps its unique key unless told otherwise; if another task
/// holds that key now, the retry is refused (exit code 4).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  taskq retry 42\n  taskq retry 42 --new-key customer:42:again\n  taskq retry --action email --failed\n  taskq retry --action email --cancelled"
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
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    if let Some(id) = args.id {
        let key = match (args.new_key, args.clear_key) {
            (Some(key), _) => RetryKey::Replace(key),
            (None, true) => RetryKey::Clear,
            (None, false) => RetryKey::Keep,
        };
        queue.retry_with(id, key).await?;
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
    let mut retried = Vec::new();
    let mut refused = Vec::new();
    let mut after = None;
    loop {
        // Retried tasks leave the state, so each page is fresh; one whose
        // key is taken stays, so the next page starts after it.
        let page = ListOptions {
            action: Some(action.clone()),
            state: Some(state),
            after,
            limit: 1000,
            ..ListOptions::default()
        };
        let tasks = queue.list(&page).await?;
        let Some(last) = tasks.last() else {
            break;
        };
        after = Some(last.id);
        for task in tasks {
            match queue.retry(task.id).await {
                Ok(()) => retried.push(task.id.0),
                Err(taskq::Error::Duplicate { .. }) => refused.push(task.id.0),
                // Retried or deleted by someone else meanwhile.
                Err(taskq::Error::WrongState { .. } | taskq::Error::TaskNotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
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
