//! The processes a scenario runs: producers and workers. Each appends a
//! line per operation to a file of its own (a history for producers, a
//! ledger of executions for workers), flushed to disk before the operation
//! it describes goes on, so the checker can count independently of the
//! queue's own bookkeeping.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use taskq::worker::{Outcome, StopReason, TaskContext, Worker, WorkerConfig};
use taskq::{NewTask, Queue, FOREVER};

use crate::ticks::BEAT;

/// The action every scenario uses, and the one of follow-up tasks.
pub const ACTION: &str = "chaos";
pub const FOLLOW_UP: &str = "chaos-follow-up";

/// Now, in Unix microseconds: the time stamp of journal lines.
pub fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// How often a worker writes its counters to its ledger.
const METRICS_EVERY: Duration = Duration::from_millis(250);

/// A task's payload: its number, unique over a run.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Payload {
    pub i: u64,
    pub poison: bool,
}

/// An append-only file whose every line reaches the disk before `line`
/// returns.
pub struct Journal(File);

impl Journal {
    pub fn open(path: &Path) -> Journal {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the journal");
        Journal(file)
    }

    pub fn line(&mut self, value: serde_json::Value) {
        let mut text = value.to_string();
        text.push('\n');
        self.0
            .write_all(text.as_bytes())
            .expect("write the journal");
        self.0.sync_data().expect("sync the journal");
    }
}

/// Settings of a producer process.
pub struct Produce<'a> {
    pub url: &'a str,
    pub journal: &'a Path,
    pub start: u64,
    pub count: u64,
    pub batch: u64,
    pub lease: Duration,
    pub poison_every: u64,
    pub pause: Duration,
    /// Enqueue each batch as diamonds (see `workflows.rs`).
    pub diamonds: bool,
}

/// Enqueues `count` tasks numbered from `start`, `batch` per transaction.
pub async fn produce(settings: Produce<'_>) {
    let queue = Queue::connect(settings.url).await.expect("connect");
    produce_on(&queue, settings).await;
}

/// Like [`produce`], through `queue`: a worker's own queue hands a single
/// task due now to an idle handler of the worker, claimed.
async fn produce_on(queue: &Queue, settings: Produce<'_>) {
    let mut journal = Journal::open(settings.journal);
    let mut first = settings.start;
    let end = settings.start + settings.count;
    while first < end {
        let n = settings.batch.min(end - first);
        let tasks: Vec<NewTask> = (first..first + n)
            .map(|i| {
                let poison = settings.poison_every > 0 && i % settings.poison_every == 0;
                // Half of the poison tasks retry forever: they must back off.
                let max_tries = if poison && (i / settings.poison_every) % 2 == 1 {
                    FOREVER
                } else {
                    3
                };
                NewTask::json(ACTION, &Payload { i, poison })
                    .expect("encode")
                    .timeout(settings.lease)
                    .max_tries(max_tries)
            })
            .collect::<Vec<_>>();
        let mut tasks = tasks;
        if settings.diamonds {
            crate::workflows::as_diamonds(first, &mut tasks);
        }
        journal.line(json!({"intent": [first, n]}));
        match queue.enqueue_many(tasks).await {
            Ok(_) => journal.line(json!({"ack": [first, n]})),
            Err(error) => journal.line(json!({"error": [first, n], "reason": error.to_string()})),
        }
        first += n;
        tokio::time::sleep(settings.pause).await;
    }
}

/// Registers the harness's two handlers: a task is logged, crashes the
/// process when poisoned (unless `defused`), works for `work` and enqueues
/// a follow-up; a follow-up is logged.
fn register(worker: &mut Worker, journal: &Arc<Mutex<Journal>>, work: Duration, defused: bool) {
    let ledger_for_tasks = Arc::clone(journal);
    worker
        .handle(ACTION, move |payload: Payload, ctx: TaskContext| {
            let journal = Arc::clone(&ledger_for_tasks);
            async move {
                let entry = json!({
                    "task": ctx.id().0, "i": payload.i, "try": ctx.tries(),
                    "token": ctx.task().lease_token, "pid": std::process::id(),
                    "at": unix_micros(),
                });
                journal.lock().unwrap().line(entry);
                if payload.poison && !defused {
                    std::process::abort();
                }
                tokio::select! {
                    () = tokio::time::sleep(work) => {}
                    () = ctx.cancelled() => {
                        if ctx.stop_reason() == Some(StopReason::Cancelled) {
                            return Ok(Outcome::cancel("cancelled by the chaos controller"));
                        }
                        return Err("stopped: the lease was lost or the worker shut down".to_string());
                    }
                }
                // The handler's work is done: a later run of this task is a
                // run of finished work (a completion lost on its way).
                journal
                    .lock()
                    .unwrap()
                    .line(json!({"finished": ctx.id().0, "at": unix_micros()}));
                let follow_up = NewTask::json(FOLLOW_UP, &payload.i)
                    .map_err(|e| e.to_string())?
                    .timeout(ctx.task().timeout);
                Ok::<_, String>(Outcome::follow_up(vec![follow_up]))
            }
        })
        .expect("register");
    let ledger_for_ticks = Arc::clone(journal);
    worker
        .handle(BEAT, move |(): (), ctx: TaskContext| {
            let journal = Arc::clone(&ledger_for_ticks);
            async move {
                let line = crate::ticks::ran(ctx.id(), ctx.task().not_before);
                journal.lock().unwrap().line(line);
                Ok::<_, String>(())
            }
        })
        .expect("register");
    let ledger_for_follow_ups = Arc::clone(journal);
    worker
        .handle(FOLLOW_UP, move |parent: u64, ctx: TaskContext| {
            let journal = Arc::clone(&ledger_for_follow_ups);
            async move {
                journal
                    .lock()
                    .unwrap()
                    .line(json!({"follow_up": parent, "task": ctx.id().0}));
                Ok::<_, String>(())
            }
        })
        .expect("register");
}

/// Runs a worker until SIGTERM: each execution goes to the ledger before
/// the task is completed; a poison task aborts the process (unless
/// `defused`: once the faults of a run are over); every
/// completed task enqueues one follow-up. The worker's counters (results
/// refused by fencing and tasks handed over among them) go to the ledger
/// every [`METRICS_EVERY`] and at the end. With `alongside`, the process
/// also enqueues tasks through the worker's own queue, one at a time, so
/// that they are handed over to its idle handlers.
pub async fn work(
    url: &str,
    ledger: &Path,
    concurrency: usize,
    work: Duration,
    defused: bool,
    alongside: Option<Produce<'_>>,
) {
    let queue = Queue::connect(url).await.expect("connect");
    let producing = async {
        if let Some(settings) = alongside {
            produce_on(&queue, settings).await;
        }
    };
    let journal = Arc::new(Mutex::new(Journal::open(ledger)));
    let config = WorkerConfig {
        concurrency,
        shutdown_timeout: Duration::from_secs(2),
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(queue.clone(), config);
    register(&mut worker, &journal, work, defused);
    let metrics = worker.metrics();
    let record = move || {
        let counters = metrics.snapshot();
        json!({
            "metrics": {
                "refused": counters.refused,
                "lease_lost": counters.lease_lost,
                "handed_over": counters.handed_over,
            },
            "pid": std::process::id(),
        })
    };
    let ticker = {
        let journal = Arc::clone(&journal);
        let record = record.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(METRICS_EVERY).await;
                journal.lock().unwrap().line(record());
            }
        })
    };
    // The worker runs until SIGTERM; enqueuing stops with it.
    let running = worker.run();
    tokio::pin!(running, producing);
    let mut produced = false;
    let ran = loop {
        tokio::select! {
            ran = &mut running => break ran,
            () = &mut producing, if !produced => produced = true,
        }
    };
    ran.expect("the worker ran");
    ticker.abort();
    journal.lock().unwrap().line(record());
}
