//! `taskq cancel`

use serde_json::json;
use taskq::{CancelOutcome, Queue, State, TaskId};

use super::{parse_id, parse_state};
use crate::failure::Failure;
use crate::output::{count, Output};

/// Cancel tasks. One that has not started ends cancelled at once and never
/// runs; a running one is asked to stop: its handler hears it, and the
/// task ends cancelled unless the handler completes it anyway.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  taskq cancel 42\n  taskq cancel --action sync --key customer:42\n  taskq cancel --action email --state queued"
)]
pub struct Args {
    /// The task to cancel.
    #[arg(value_parser = parse_id, required_unless_present = "action", conflicts_with = "action")]
    pub id: Option<TaskId>,
    /// Cancel tasks of this action: the one holding --key, or all in --state.
    #[arg(long)]
    pub action: Option<String>,
    /// With --action: the task holding this unique key.
    #[arg(long, requires = "action", conflicts_with = "state")]
    pub key: Option<String>,
    /// With --action: every task in this state, queued or running.
    #[arg(long, value_parser = parse_state, requires = "action", required_unless_present_any = ["id", "key"])]
    pub state: Option<State>,
}

/// What a cancellation did, in words.
fn said(id: TaskId, outcome: CancelOutcome) -> String {
    match outcome {
        CancelOutcome::Cancelled => format!("task {id} is cancelled"),
        CancelOutcome::Requested => {
            format!("task {id} is running: its worker was asked to stop it")
        }
        CancelOutcome::AlreadyFinished(state) => {
            format!("task {id} had already finished ({state}); nothing changed")
        }
    }
}

fn outcome_json(id: TaskId, outcome: CancelOutcome) -> serde_json::Value {
    let (done, state) = match outcome {
        CancelOutcome::Cancelled => ("cancelled", None),
        CancelOutcome::Requested => ("requested", None),
        CancelOutcome::AlreadyFinished(state) => ("already_finished", Some(state.as_str())),
    };
    json!({"id": id.0, "outcome": done, "state": state})
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    if let Some(id) = args.id {
        let outcome = queue.cancel(id).await?;
        return if out.json {
            out.json(&outcome_json(id, outcome))
        } else {
            out.line(said(id, outcome))
        };
    }
    let action = args.action.unwrap_or_default();
    if let Some(key) = args.key {
        return match queue.cancel_key(&action, &key).await? {
            Some((id, outcome)) if out.json => out.json(&outcome_json(id, outcome)),
            Some((id, outcome)) => out.line(said(id, outcome)),
            None if out.json => out.json(&json!({"id": null, "outcome": "none"})),
            None => out.line(format!(
                "no task of {action} that may still run holds the key {key:?}; nothing changed"
            )),
        };
    }
    let state = args.state.unwrap_or(State::Queued);
    let done = queue.cancel_many(&action, state).await?;
    if out.json {
        return out.json(&json!({"cancelled": done.cancelled, "requested": done.requested}));
    }
    out.line(format!(
        "{} of {action} cancelled; {} asked to stop",
        count(done.cancelled, "task", "tasks"),
        count(done.requested, "running task", "running tasks"),
    ))
}
