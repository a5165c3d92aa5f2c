//! `taskq retry`

use serde_json::json;
use taskq::{ListOptions, Queue, State, TaskId};

use super::parse_id;
use crate::failure::Failure;
use crate::output::{count, Output};

/// Queue failed tasks again, with their tries reset, to run now.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  taskq retry 42\n  taskq retry --action email --failed")]
pub struct Args {
    /// The failed task to retry.
    #[arg(value_parser = parse_id, required_unless_present = "action", conflicts_with = "action")]
    pub id: Option<TaskId>,
    /// Retry every failed task of this action (needs --failed).
    #[arg(long, requires = "failed")]
    pub action: Option<String>,
    /// With --action: retry the tasks that failed for good.
    #[arg(long, requires = "action")]
    pub failed: bool,
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    if let Some(id) = args.id {
        queue.retry(id).await?;
        return if out.json {
            out.json(&json!({"retried": [id.0]}))
        } else {
            out.line(format!("task {id} is queued again"))
        };
    }
    let action = args.action.unwrap_or_default();
    let mut retried = Vec::new();
    loop {
        // Retried tasks leave the failed state, so each page is fresh.
        let page = ListOptions {
            action: Some(action.clone()),
            state: Some(State::Failed),
            limit: 1000,
            ..ListOptions::default()
        };
        let failed = queue.list(&page).await?;
        if failed.is_empty() {
            break;
        }
        for task in failed {
            match queue.retry(task.id).await {
                Ok(()) => retried.push(task.id.0),
                // Retried or deleted by someone else meanwhile.
                Err(taskq::Error::WrongState { .. } | taskq::Error::TaskNotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    if out.json {
        out.json(&json!({"retried": retried}))
    } else {
        let n = retried.len() as u64;
        let verb = if n == 1 { "is" } else { "are" };
        out.line(format!(
            "{} of {action} {verb} queued again",
            count(n, "failed task", "failed tasks")
        ))
    }
}
