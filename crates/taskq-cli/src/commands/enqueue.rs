//! `taskq enqueue`

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::json;
use taskq::{NewTask, Queue, State, TaskId, Unique};

use super::{parse_duration, parse_id, parse_state, parse_time};
use crate::failure::Failure;
use crate::output::Output;

/// Enqueue one task and print its id.
///
/// The payload is JSON, from the PAYLOAD argument, from --file, or from
/// standard input (PAYLOAD `-`, or no PAYLOAD with input piped in); with
/// none, it is `null`. --raw stores the bytes as they are, unchecked.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  taskq enqueue email '{\"to\": \"ada@example.com\"}'\n  taskq enqueue report --delay 10m --max-tries 3 < report.json\n  taskq enqueue cleanup --run-at 2026-12-01T03:00:00Z\n  taskq enqueue sync 42 --unique-key customer:42 --priority -1"
)]
pub struct Args {
    /// The action (queue name) of the task.
    pub action: String,
    /// The payload as JSON text; `-` reads it from standard input.
    pub payload: Option<String>,
    /// Read the payload from this file.
    #[arg(long, conflicts_with = "payload")]
    pub file: Option<PathBuf>,
    /// Store the payload bytes as they are, without checking for JSON.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub options: TaskOptions,
}

/// The options of a task, shared by `enqueue` and `bulk`.
#[derive(Debug, clap::Args)]
pub struct TaskOptions {
    /// Wait this long before the task may run, like 10m.
    #[arg(long, value_parser = parse_duration, conflicts_with = "run_at", allow_hyphen_values = true)]
    pub delay: Option<Duration>,
    /// Do not run before this time (RFC 3339, like 2026-12-01T03:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub run_at: Option<SystemTime>,
    /// The id of the task that spawned this one.
    #[arg(long, value_parser = parse_id)]
    pub parent: Option<TaskId>,
    /// Wait for this task to succeed first (repeat for more): the task
    /// starts waiting, and is queued once all of them have succeeded.
    #[arg(long = "after", value_parser = parse_id, value_name = "ID")]
    pub after: Vec<TaskId>,
    /// With --after: run once they have finished even if some failed or
    /// were cancelled, instead of being cancelled with them.
    #[arg(long, requires = "after")]
    pub run_if_dependencies_fail: bool,
    #[command(flatten)]
    pub settings: TaskSettings,
}

/// The options of a task that a schedule's tasks take too (`enqueue`,
/// `bulk` and `schedule add`).
#[derive(Debug, clap::Args)]
pub struct TaskSettings {
    /// Tries before the task fails for good; -1 retries forever.
    #[arg(long, default_value_t = taskq::DEFAULT_MAX_TRIES, allow_negative_numbers = true)]
    pub max_tries: i32,
    /// Lease length of each try, like 30s or 2m.
    #[arg(long, default_value = "2m", value_parser = parse_duration, allow_hyphen_values = true)]
    pub timeout: Duration,
    /// Priority: lower runs first (-32768 to 32767).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i16,
    /// A key unique among the queued and running tasks of the action: if
    /// another task holds it, nothing is added and that task's id is
    /// printed.
    #[arg(long)]
    pub unique_key: Option<String>,
    /// Also count finished tasks in this state (failed, succeeded or
    /// cancelled) for the unique key; repeat for more.
    #[arg(long, value_parser = parse_state, requires = "unique_key")]
    pub unique_including: Vec<State>,
    /// The unique key also holds among all tasks of one window this long
    /// (counted from the Unix epoch), finished ones included, like 1h.
    #[arg(long, value_parser = parse_duration, requires = "unique_key", allow_hyphen_values = true)]
    pub unique_per: Option<Duration>,
    /// The key the action's per-key limit counts the task under (see
    /// `taskq limit set --per-key`), like a customer's id.
    #[arg(long)]
    pub concurrency_key: Option<String>,
}

impl TaskOptions {
    /// `task` with these options.
    pub fn apply(&self, task: NewTask) -> NewTask {
        let mut task = self.settings.apply(task);
        if let Some(delay) = self.delay {
            task = task.delay(delay);
        }
        if let Some(at) = self.run_at {
            task = task.run_at(at);
        }
        if !self.after.is_empty() {
            task = task.depends_on(self.after.iter().copied());
        }
        if self.run_if_dependencies_fail {
            task = task.run_if_dependencies_fail();
        }
        if let Some(parent) = self.parent {
            task = task.parent(parent);
        }
        task
    }
}

impl TaskSettings {
    /// `task` with these settings.
    pub fn apply(&self, task: NewTask) -> NewTask {
        let mut task = task.max_tries(self.max_tries).timeout(self.timeout);
        if let Some(key) = &self.unique_key {
            let mut unique = Unique::key(key.clone());
            for state in &self.unique_including {
                unique = unique.including(*state);
            }
            if let Some(period) = self.unique_per {
                unique = unique.per(period);
            }
            task = task.unique(unique);
        }
        if let Some(key) = &self.concurrency_key {
            task = task.concurrency_key(key.clone());
        }
        task.priority(self.priority)
    }
}

fn read_payload(args: &Args) -> Result<Vec<u8>, Failure> {
    let read_stdin = || {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map(|_| bytes)
            .map_err(|e| {
                Failure::invalid(format!(
                    "could not read the payload from standard input: {e}"
                ))
            })
    };
    match (&args.payload, &args.file) {
        (Some(text), _) if text == "-" => read_stdin(),
        (Some(text), _) => Ok(text.as_bytes().to_vec()),
        (None, Some(path)) => std::fs::read(path).map_err(|e| {
            Failure::invalid(format!(
                "could not read the payload file {}: {e}",
                path.display()
            ))
        }),
        (None, None) if !std::io::stdin().is_terminal() => read_stdin(),
        (None, None) => Ok(b"null".to_vec()),
    }
}

/// A task of `action` with `payload`: checked to be valid JSON (strings
/// included) unless `raw`, saying where it is not.
pub fn new_task(action: &str, payload: Vec<u8>, raw: bool, what: &str) -> Result<NewTask, Failure> {
    if raw {
        return Ok(NewTask::raw(action, payload));
    }
    NewTask::json_bytes(action, payload).map_err(|error| {
        let reason = match error {
            taskq::Error::InvalidInput { reason, .. } => reason,
            other => other.to_string(),
        };
        Failure::invalid(format!(
            "{what} {reason} (use --raw to store bytes as they are)"
        ))
    })
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let mut payload = read_payload(&args)?;
    if payload.iter().all(u8::is_ascii_whitespace) && !args.raw {
        payload = b"null".to_vec();
    }
    let task = new_task(&args.action, payload, args.raw, "the payload")?;
    let task = args.options.apply(task);
    let enqueued = queue.enqueue_task(task).await?;
    if out.json {
        out.json(&json!({"id": enqueued.id.0, "duplicate": enqueued.duplicate}))
    } else if enqueued.duplicate {
        out.line(format_args!(
            "{} (a duplicate: that task already holds the unique key; nothing was added)",
            enqueued.id
        ))
    } else {
        out.line(enqueued.id)
    }
}
