//! `taskq show`

use taskq::{Queue, TaskId};

use super::parse_id;
use crate::failure::{Failure, NOT_FOUND};
use crate::output::{self, Output};

/// Print everything about one task, its payload pretty-printed when JSON.
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
    if out.json {
        return out.json(&output::task_json(&task));
    }
    let optional_time =
        |t: Option<std::time::SystemTime>| t.map(output::time).unwrap_or_else(|| "-".into());
    let max = if task.max_tries < 0 {
        "forever".to_string()
    } else {
        task.max_tries.to_string()
    };
    let fields = [
        ("id", task.id.to_string()),
        ("action", task.action.clone()),
        ("state", task.state.to_string()),
        ("tries", format!("{} of {max}", task.tries)),
        ("timeout", output::duration(task.timeout)),
        ("not before", output::time(task.not_before)),
        ("lease ends", optional_time(task.expires)),
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
    ];
    for (name, value) in fields {
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
    Ok(())
}
