//! `taskq bulk`

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::PathBuf;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use serde_json::json;
use taskq::{NewTask, Queue};

use super::enqueue::{new_task, TaskOptions};
use crate::failure::{Failure, INTERRUPTED};
use crate::output::{count, thousands, Output};

/// Enqueue one task per line of a JSON-lines file, in batched
/// transactions.
///
/// Every line is checked before anything is written, so a malformed line
/// enqueues nothing. Each batch is one transaction: if the database fails
/// mid-way, the batches before it are in, the failing one is not, and the
/// message says how many tasks were enqueued. Blank lines are skipped. A
/// progress bar shows on a terminal.
///
/// Example: taskq bulk email emails.jsonl --batch-size 500
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The action (queue name) of every task.
    pub action: String,
    /// The file, one JSON payload per line; `-` reads standard input.
    pub file: PathBuf,
    /// Tasks per transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Store each line's bytes as they are, without checking for JSON.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub options: TaskOptions,
}

fn read_lines(file: &PathBuf) -> Result<Vec<Vec<u8>>, Failure> {
    let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let opened = std::fs::File::open(file)
            .map_err(|e| Failure::invalid(format!("could not open {}: {e}", file.display())))?;
        Box::new(BufReader::new(opened))
    };
    let mut lines = Vec::new();
    for line in reader.split(b'\n') {
        let mut line =
            line.map_err(|e| Failure::invalid(format!("could not read {}: {e}", file.display())))?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        lines.push(line);
    }
    Ok(lines)
}

/// Every line's task, checked: a bad line enqueues nothing.
fn parse_tasks(args: &Args) -> Result<Vec<NewTask>, Failure> {
    let mut tasks = Vec::new();
    for (number, line) in read_lines(&args.file)?.into_iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let what = format!("line {}", number + 1);
        let task = args
            .options
            .apply(new_task(&args.action, line, args.raw, &what)?);
        task.validate()
            .map_err(|e| Failure::invalid(format!("{what}: {e}")))?;
        tasks.push(task);
    }
    Ok(tasks)
}

/// A progress bar on a terminal, nothing elsewhere.
fn progress_bar(total: usize, out: &Output) -> ProgressBar {
    if !std::io::stderr().is_terminal() || out.json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    let style =
        ProgressStyle::with_template("{bar:40} {pos}/{len} tasks {rate} eta {eta}").map(|style| {
            style.with_key(
                "rate",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}/s", thousands(state.per_sec() as u64));
                },
            )
        });
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

/// Set once SIGINT (Ctrl-C) or SIGTERM arrives: the batch being written
/// finishes, and no other starts.
fn interruption() -> Arc<AtomicBool> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    tokio::spawn(async move {
        taskq::worker::shutdown_signal().await;
        flag.store(true, Ordering::SeqCst);
    });
    interrupted
}

/// What was committed before the run stopped, in words.
fn committed(enqueued: usize, total: usize, batches: u32) -> String {
    format!(
        "{enqueued} of {} enqueued in {}",
        count(total as u64, "task was", "tasks were"),
        count(batches, "whole batch", "whole batches")
    )
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let tasks = parse_tasks(&args)?;
    let total = tasks.len();
    let progress = progress_bar(total, out);
    let interrupted = interruption();
    let mut enqueued = 0;
    let mut batches = 0u32;
    let mut rest = tasks;
    while !rest.is_empty() {
        if interrupted.load(Ordering::SeqCst) {
            progress.abandon();
            return Err(Failure {
                code: INTERRUPTED,
                message: format!(
                    "interrupted: {}; the rest were not enqueued",
                    committed(enqueued, total, batches)
                ),
            });
        }
        let tail = rest.split_off(rest.len().min(args.batch_size as usize));
        let batch = std::mem::replace(&mut rest, tail);
        let size = batch.len();
        if let Err(error) = queue.enqueue_many(batch).await {
            progress.abandon();
            let mut failure = Failure::from(error);
            failure.message = format!(
                "{}; {} before it, and none of the failing batch",
                failure.message,
                committed(enqueued, total, batches)
            );
            return Err(failure);
        }
        enqueued += size;
        batches += 1;
        progress.inc(size as u64);
    }
    progress.finish_and_clear();
    if out.json {
        out.json(&json!({"enqueued": enqueued, "batches": batches}))
    } else {
        out.line(format!(
            "enqueued {} in {}",
            count(enqueued as u64, "task", "tasks"),
            count(batches, "batch", "batches")
        ))
    }
}
