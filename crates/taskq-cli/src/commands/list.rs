//! `taskq list`

use serde_json::Value;
use taskq::{ListOptions, Order, Queue, State, TaskId};

use super::{parse_id, parse_state};
use crate::failure::Failure;
use crate::output::{self, Output};

/// List tasks, filtered by action and state, a page at a time.
///
/// Pass the last id shown as --after to see the next page.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  taskq list --action email --state failed\n  taskq list --state failed --error timeout\n  taskq list --parent 42\n  taskq list --newest --limit 20\n  taskq list --after 1200"
)]
pub struct Args {
    /// Only tasks of this action.
    #[arg(long)]
    pub action: Option<String>,
    /// Only tasks in this state: queued, running, failed, succeeded or
    /// cancelled.
    #[arg(long, value_parser = parse_state)]
    pub state: Option<State>,
    /// Newest first (default: oldest first).
    #[arg(long)]
    pub newest: bool,
    /// Start after this id (in the chosen order).
    #[arg(long, value_parser = parse_id)]
    pub after: Option<TaskId>,
    /// Tasks per page.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    /// Only tasks whose last error contains this text (ignoring the case
    /// of ASCII letters).
    #[arg(long)]
    pub error: Option<String>,
    /// Only the follow-ups of this task.
    #[arg(long, value_parser = parse_id)]
    pub parent: Option<TaskId>,
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let options = ListOptions {
        action: args.action,
        state: args.state,
        order: if args.newest {
            Order::NewestFirst
        } else {
            Order::OldestFirst
        },
        after: args.after,
        limit: args.limit,
        error_contains: args.error,
        parent: args.parent,
    };
    let tasks = queue.list(&options).await?;
    if out.json {
        return out.json(&Value::Array(tasks.iter().map(output::task_json).collect()));
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|task| {
            let tries = if task.max_tries < 0 {
                format!("{}/∞", task.tries)
            } else {
                format!("{}/{}", task.tries, task.max_tries)
            };
            let mut error = task
                .last_error
                .clone()
                .unwrap_or_default()
                .replace('\n', " ");
            if error.chars().count() > 60 {
                error = error.chars().take(59).collect::<String>() + "…";
            }
            vec![
                task.id.to_string(),
                task.action.clone(),
                task.state.to_string(),
                task.priority.to_string(),
                tries,
                output::time(task.not_before),
                error,
            ]
        })
        .collect();
    out.table(
        &[
            "ID",
            "ACTION",
            "STATE",
            "PRIO",
            "TRIES",
            "NOT BEFORE",
            "LAST ERROR",
        ],
        &rows,
        "no tasks",
    )
}
