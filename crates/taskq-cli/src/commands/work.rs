//! `taskq work`

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use taskq::worker::{Outcome, Retention, StopReason, TaskContext, Worker, WorkerConfig};
use taskq::Queue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::parse_duration;
use crate::failure::Failure;
use crate::output::Output;

/// The most of a failed command's standard error kept as the task's error.
const ERROR_TAIL: usize = 2000;

/// Run a command for each task of an action, as a durable job queue for
/// shell scripts.
///
/// The command gets the task's payload on standard input and TASKQ_TASK_ID,
/// TASKQ_ACTION, TASKQ_TRY and TASKQ_MAX_TRIES in its environment. Exit
/// code 0 completes the task; any other fails the try, with the end of the
/// command's standard error as the task's last error, and the task is
/// retried with backoff until its tries are used up. Leases are extended
/// while the command runs. On SIGINT or SIGTERM the worker stops taking
/// tasks, lets running commands finish for --shutdown-timeout, then kills
/// them and gives their tasks back to run again. A task cancelled while its
/// command runs (`taskq cancel`) has its command killed and ends cancelled.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  taskq work email -- ./send-email.sh\n  taskq work resize --concurrency 4 -- convert-image --from-stdin"
)]
pub struct Args {
    /// The action whose tasks to run.
    pub action: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    /// Commands running at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// How long running commands may finish after SIGINT or SIGTERM.
    #[arg(long, default_value = "30s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub shutdown_timeout: Duration,
    /// How often to look for tasks when idle and no wake-up came: the most
    /// a delayed task waits past its time, or a task whose wake-up was
    /// lost waits.
    #[arg(long, default_value = "1s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub poll_interval: Duration,
    /// A name for this worker, recorded with each task it runs (beside
    /// the host name and process id) and shown by `taskq show`.
    #[arg(long)]
    pub name: Option<String>,
    /// Do not enqueue the due ticks of schedules (`taskq schedule`); by
    /// default every worker does, each tick once across all of them.
    #[arg(long)]
    pub no_schedules: bool,
    /// How long succeeded tasks (kept by a unique key that counts them)
    /// stay before workers remove them, like 7d; `forever` keeps them.
    #[arg(long, default_value = "7d", value_parser = parse_retention)]
    pub retain_succeeded: Retained,
    /// How long tasks that failed for good stay, like 30d, or `forever`.
    #[arg(long, default_value = "30d", value_parser = parse_retention)]
    pub retain_failed: Retained,
    /// How long cancelled tasks stay, like 30d, or `forever`.
    #[arg(long, default_value = "30d", value_parser = parse_retention)]
    pub retain_cancelled: Retained,
    /// How often this worker removes finished tasks past their retention
    /// (at a random moment of each period, in batches).
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub retention_every: Duration,
}

/// A retention: a duration, or `None` for forever.
#[derive(Clone, Copy, Debug)]
pub struct Retained(Option<Duration>);

/// `30d`, `12h`, or `forever`.
fn parse_retention(text: &str) -> Result<Retained, String> {
    if text == "forever" {
        return Ok(Retained(None));
    }
    parse_duration(text).map(|d| Retained(Some(d)))
}

/// The last `ERROR_TAIL` characters of a command's standard error.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    let skip = text.chars().count().saturating_sub(ERROR_TAIL);
    text.chars().skip(skip).collect()
}

async fn run_command(
    command: &[String],
    payload: Vec<u8>,
    ctx: TaskContext,
) -> Result<Outcome, String> {
    let (program, arguments) = command.split_first().ok_or("no command was given")?;
    let mut child = tokio::process::Command::new(program)
        .args(arguments)
        .env("TASKQ_TASK_ID", ctx.id().to_string())
        .env("TASKQ_ACTION", ctx.action())
        .env("TASKQ_TRY", ctx.tries().to_string())
        .env("TASKQ_MAX_TRIES", ctx.max_tries().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input must not block us.
        tokio::spawn(async move {
            let _ = stdin.write_all(&payload).await;
        });
    }
    let stderr = child.stderr.take();
    let collect = tokio::spawn(async move {
        let mut kept = Vec::new();
        let Some(mut stderr) = stderr else {
            return kept;
        };
        let mut chunk = [0u8; 4096];
        let mut echo = tokio::io::stderr();
        while let Ok(n) = stderr.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            let _ = echo.write_all(&chunk[..n]).await;
            kept.extend_from_slice(&chunk[..n]);
            if kept.len() > 4 * ERROR_TAIL {
                kept.drain(..kept.len() - 4 * ERROR_TAIL);
            }
        }
        kept
    });
    let status = tokio::select! {
        status = child.wait() => status.map_err(|e| format!("could not wait for {program}: {e}"))?,
        _ = ctx.cancelled() => {
            let _ = child.kill().await;
            let why = match ctx.stop_reason() {
                Some(StopReason::Cancelled) => "the task was cancelled",
                Some(StopReason::LeaseLost) => "the task's lease was lost",
                _ => "the worker shut down",
            };
            return Err(format!("{program} was stopped: {why}"));
        }
    };
    let stderr = collect.await.unwrap_or_default();
    if status.success() {
        return Ok(Outcome::complete());
    }
    let what = match status.code() {
        Some(code) => format!("{program} exited with code {code}"),
        None => format!("{program} was killed by a signal"),
    };
    let tail = tail(&stderr);
    Err(if tail.is_empty() {
        what
    } else {
        format!("{what}: {tail}")
    })
}

pub async fn run(args: Args, queue: Queue, out: &Output) -> Result<(), Failure> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .try_init();
    let config = WorkerConfig {
        concurrency: args.concurrency as usize,
        claim_batch: args.concurrency.min(taskq::MAX_CLAIM_BATCH),
        shutdown_timeout: args.shutdown_timeout,
        name: args.name,
        run_schedules: !args.no_schedules,
        retention: Retention {
            succeeded: args.retain_succeeded.0,
            failed: args.retain_failed.0,
            cancelled: args.retain_cancelled.0,
            every: args.retention_every,
        },
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(queue, config);
    let command = Arc::new(args.command);
    worker.handle_raw(&args.action, None, move |payload, ctx| {
        let command = Arc::clone(&command);
        async move { run_command(&command, payload, ctx).await }
    })?;
    let metrics = worker.metrics();
    worker.run().await?;
    let m = metrics.snapshot();
    if out.json {
        let value = serde_json::to_value(m).map_err(|e| Failure::other(e.to_string()))?;
        out.json(&json!({"stopped": true, "metrics": value}))
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "taskq: stopped after {} completed, {} retried, {} failed, {} cancelled, {} released",
            m.completed,
            m.retried,
            m.failed,
            m.cancelled,
            m.released
        );
        Ok(())
    }
}
