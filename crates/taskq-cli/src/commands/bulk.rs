//! `taskq bulk`

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use taskq::{NewTask, Queue};

use super::enqueue::{check_json, TaskOptions};
use crate::failure::Failure;
use crate::output::Output;

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

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let lines = read_lines(&args.file)?;
    let mut tasks = Vec::new();
    for (number, line) in lines.into_iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        check_json(&line, args.raw, &format!("line {}", number + 1))?;
        let task = args.options.apply(NewTask::raw(args.action.clone(), line));
        task.validate()
            .map_err(|e| Failure::invalid(format!("line {}: {e}", number + 1)))?;
        tasks.push(task);
    }
    let total = tasks.len();
    let progress = if std::io::stderr().is_terminal() && !out.json {
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} tasks {per_sec} eta {eta}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut enqueued = 0;
    let mut batches = 0;
    let mut rest = tasks;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(args.batch_size as usize));
        let batch = std::mem::replace(&mut rest, tail);
        let size = batch.len();
        if let Err(error) = queue.enqueue_many(batch).await {
            progress.abandon();
            let mut failure = Failure::from(error);
            failure.message = format!(
                "{}; {enqueued} of {total} tasks were enqueued in {batches} whole batches before it, \
                 and none of the failing batch",
                failure.message
            );
            return Err(failure);
        }
        enqueued += size;
        batches += 1;
        progress.inc(size as u64);
    }
    progress.finish_and_clear();
    if out.json {
        out.json(&json!({"enqueued": enqueued, "batches": batches}));
    } else {
        println!("enqueued {enqueued} tasks in {batches} batches");
    }
    Ok(())
}
