//! `taskq show`

use std::time::SystemTime;

use taskq::{Queue, Task, TaskId};

use super::parse_id;
use crate::failure::{Failure, NOT_FOUND};
use crate::output::{self, Output};

/// Print everything about one task: its options, who holds it, its
/// payload (pretty-printed when JSON), its result, the tasks it depends on
/// and those that depend on it, and its attempts.
///
/// Example: taskq show 42
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task's id.
    #[arg(value_parser = parse_id)]
    pub id: TaskId,
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let Some(task) = queue.get(args.id).await? else {
        return Err(Failure {
            code: NOT_FOUND,
            message: format!(
                "task {} does not exist (it may have been completed or deleted)",
                args.id
            ),
        });
    };
    let links = queue.links(args.id).await?;
    if out.json {
        let mut value = output::task_json(&task);
        value["waiting_on"] = task.waiting_on.into();
        value["dependencies"] = output::links_json(&links.dependencies);
        value["dependents"] = output::links_json(&links.dependents);
        return out.json(&value);
    }
    for (name, value) in fields(&task) {
        out.line(format!("{name:<12} {value}"))?;
    }
    let (kind, payload) = output::payload(&task.payload);
    let text = match kind {
        "payload" => serde_json::to_string_pretty(&payload).unwrap_or_default(),
        _ => payload.as_str().unwrap_or_default().to_string(),
    };
    out.line(format!(
        "payload{}",
        if kind == "payload_hex" { " (hex)" } else { "" }
    ))?;
    for line in text.lines() {
        out.line(format!("  {line}"))?;
    }
    if let Some(result) = &task.result {
        out.line("result")?;
        let result = serde_json::from_slice::<serde_json::Value>(result)
            .map(|value| serde_json::to_string_pretty(&value).unwrap_or_default())
            .unwrap_or_else(|_| String::from_utf8_lossy(result).into_owned());
        for line in result.lines() {
            out.line(format!("  {line}"))?;
        }
    }
    for (title, list) in [
        ("dependencies", &links.dependencies),
        ("dependents", &links.dependents),
    ] {
        if !list.is_empty() {
            out.line(title)?;
            output::links_table(list, out)?;
        }
    }
    attempts(&task, out)
}

/// The task's fields, named, as shown.
fn fields(task: &Task) -> Vec<(&'static str, String)> {
    let optional_time = |t: Option<SystemTime>| t.map(output::time).unwrap_or_else(|| "-".into());
    let max = if task.max_tries < 0 {
        "forever".to_string()
    } else {
        task.max_tries.to_string()
    };
    let unique = match (&task.unique_key, task.unique_window) {
        (None, _) => "-".to_string(),
        (Some(key), window) => {
            let states: Vec<&str> = task.unique_states.iter().map(|s| s.as_str()).collect();
            let window = window.map_or(String::new(), |at| {
                format!(", and in the window from {}", output::time(at))
            });
            format!("{key} (among {}{window})", states.join(", "))
        }
    };
    let holder = match (&task.worker, task.state) {
        (Some(worker), taskq::State::Running) => format!("{worker} (holds it now)"),
        (Some(worker), _) => format!("{worker} (ran the last try)"),
        (None, _) => "-".to_string(),
    };
    vec![
        ("id", task.id.to_string()),
        ("action", task.action.clone()),
        (
            "state",
            match task.state {
                taskq::State::Waiting => {
                    format!("waiting (for {} of its dependencies)", task.waiting_on)
                }
                state => state.to_string(),
            },
        ),
        ("priority", task.priority.to_string()),
        ("unique key", unique),
        (
            "concurrency key",
            task.concurrency_key
                .clone()
                .unwrap_or_else(|| "-".to_owned()),
        ),
        ("tries", format!("{} of {max}", task.tries)),
        ("timeout", output::duration(task.timeout)),
        ("not before", output::time(task.not_before)),
        ("started", optional_time(task.started_at)),
        ("lease ends", optional_time(task.expires)),
        ("worker", holder),
        ("cancel asked", optional_time(task.cancel_requested)),
        (
            "parent",
            task.parent.map_or_else(|| "-".into(), |p| p.to_string()),
        ),
        ("created", output::time(task.created_at)),
        ("finished", optional_time(task.finished_at)),
        (
            "last error",
            task.last_error.clone().unwrap_or_else(|| "-".into()),
        ),
    ]
}

/// The task's attempts, as a table.
fn attempts(task: &Task, out: &Output) -> Result<(), Failure> {
    out.line("attempts")?;
    let rows: Vec<Vec<String>> = task
        .attempts
        .iter()
        .map(|attempt| {
            vec![
                attempt.number.to_string(),
                attempt.started_at.map_or_else(|| "-".into(), output::time),
                output::time(attempt.ended_at),
                attempt.outcome.to_string(),
                attempt
                    .worker
                    .as_ref()
                    .map_or_else(|| "-".into(), ToString::to_string),
                attempt.error.clone().unwrap_or_default().replace('\n', " "),
            ]
        })
        .collect();
    out.table(
        &["TRY", "STARTED", "ENDED", "OUTCOME", "WORKER", "ERROR"],
        &rows,
        "  none recorded yet (a try is recorded when it ends)",
    )
}
