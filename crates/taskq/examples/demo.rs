//! The main job of taskq, end to end, on an embedded SQLite file:
//!
//!     cargo run --example demo
//!
//! It enqueues image-resize tasks and works them with the worker runtime
//! (three handlers at once). One task is claimed by a worker that then
//! "crashes": the task runs again once its lease expires. One task is
//! poisoned: it fails every try and ends failed for good, kept for
//! inspection, with a record of each try. Every completed resize enqueues a
//! follow-up "notify" task in the same transaction. One task jumps the line
//! with a lower priority, a second enqueue of a unique key adds nothing, and
//! one task is cancelled before it runs. The worker also declares a
//! schedule that ticks every second and runs its ticks. At the end it
//! prints what happened.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use taskq::sqlite::{SqliteBackend, SqliteConfig};
use taskq::worker::{
    CancellationToken, MetricsSnapshot, Outcome, TaskContext, Worker, WorkerConfig,
};
use taskq::{Backoff, ListOptions, NewTask, Queue, QueueConfig, Schedule, State};

#[derive(Serialize, Deserialize)]
struct Resize {
    image: String,
    poisoned: bool,
}

type Log = Arc<Mutex<Vec<String>>>;

async fn resize(job: Resize, ctx: TaskContext, log: Log) -> Result<Outcome, String> {
    tokio::time::sleep(Duration::from_millis(20)).await; // the "work"
    if job.poisoned {
        log.lock().unwrap().push(format!(
            "task {} try {} of {}: {} is corrupt",
            ctx.id(),
            ctx.tries(),
            ctx.max_tries(),
            job.image
        ));
        return Err(format!("{} is corrupt", job.image));
    }
    if ctx.tries() > 1 {
        log.lock().unwrap().push(format!(
            "task {} try {}: {} resized after the crashed worker's lease expired",
            ctx.id(),
            ctx.tries(),
            job.image
        ));
    }
    let notify =
        NewTask::json("notify", &format!("{} resized", job.image)).map_err(|e| e.to_string())?;
    Ok(Outcome::follow_up(vec![notify]))
}

/// A fresh queue in the file at `path`, with short backoffs and polls so
/// that the demo's retries take a second.
async fn open(path: &str) -> Result<Queue, taskq::Error> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let config = QueueConfig {
        backoff: Backoff {
            initial: Duration::from_millis(50),
            ..Backoff::default()
        },
        poll_interval: Duration::from_millis(100),
        ..QueueConfig::default()
    };
    Queue::new(
        SqliteBackend::open(path, SqliteConfig::default()).await?,
        config,
    )
}

/// A task claimed by a worker that crashes, and twenty more, one of them
/// poisoned.
async fn enqueue(queue: &Queue) -> Result<(), taskq::Error> {
    // A worker claims a task with a 300 ms lease, then crashes.
    let crash = Resize {
        image: "img-00.png".into(),
        poisoned: false,
    };
    let doomed = NewTask::json("resize", &crash)?.timeout(Duration::from_millis(300));
    let doomed = queue.enqueue_task(doomed).await?.id;
    let claimed = queue.claim("resize").await?.expect("the task is queued");
    println!("a worker claimed task {doomed} and crashed (its 300 ms lease will expire)");
    drop(claimed);

    // Twenty more tasks in one transaction; image 13 is poisoned.
    let tasks = (1..=20)
        .map(|n| {
            let job = Resize {
                image: format!("img-{n:02}.png"),
                poisoned: n == 13,
            };
            NewTask::json("resize", &job).map(|task| task.max_tries(3))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ids = queue
        .enqueue_many(tasks)
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect::<Vec<_>>();
    println!(
        "enqueued {} resize tasks (ids {}..={})",
        ids.len(),
        ids[0],
        ids[ids.len() - 1]
    );
    Ok(())
}

/// Priorities, unique keys and cancellation, before the worker starts.
async fn control(queue: &Queue) -> Result<(), taskq::Error> {
    let urgent = Resize {
        image: "urgent.png".into(),
        poisoned: false,
    };
    let id = queue
        .enqueue_task(NewTask::json("resize", &urgent)?.priority(-1))
        .await?
        .id;
    println!("task {id} has priority -1: it runs before the others");
    let banner = || {
        let job = Resize {
            image: "banner.png".into(),
            poisoned: false,
        };
        NewTask::json("resize", &job).map(|task| task.unique_key("banner"))
    };
    let first = queue.enqueue_task(banner()?).await?;
    let again = queue.enqueue_task(banner()?).await?;
    println!(
        "unique key \"banner\": task {} added, the second enqueue a duplicate of task {} ({})",
        first.id, again.id, again.duplicate
    );
    let unwanted = Resize {
        image: "unwanted.png".into(),
        poisoned: false,
    };
    let id = queue.enqueue("resize", &unwanted).await?;
    println!(
        "task {id} cancelled before it ran: {:?}",
        queue.cancel(id).await?
    );
    Ok(())
}

/// Runs a worker (three handlers at once) until nothing is queued or
/// running; returns what it logged, its counters and the notify count.
async fn work(queue: &Queue) -> Result<(Vec<String>, MetricsSnapshot, u32), taskq::Error> {
    let log: Log = Arc::default();
    let notified = Arc::new(Mutex::new(0));
    let mut worker = Worker::new(
        queue.clone(),
        WorkerConfig {
            concurrency: 3,
            ..WorkerConfig::default()
        },
    );
    let resize_log = Arc::clone(&log);
    worker.handle("resize", move |job: Resize, ctx: TaskContext| {
        resize(job, ctx, Arc::clone(&resize_log))
    })?;
    // A periodic task: each tick enqueues one "heartbeat" task, carrying
    // the tick's time (every worker of every process may declare it).
    worker.schedule(Schedule::every(
        "heartbeat",
        "heartbeat",
        Duration::from_secs(1),
    ))?;
    let beats = Arc::clone(&log);
    worker.handle("heartbeat", move |(): (), ctx: TaskContext| {
        let beats = Arc::clone(&beats);
        async move {
            let late = SystemTime::now().duration_since(ctx.task().not_before);
            let late = late.unwrap_or_default();
            let line = format!(
                "heartbeat task {}: the schedule's tick, run {late:.1?} after it",
                ctx.id()
            );
            beats.lock().unwrap().push(line);
            Ok::<_, String>(())
        }
    })?;
    let counter = Arc::clone(&notified);
    worker.handle("notify", move |_message: String, _ctx: TaskContext| {
        let counter = Arc::clone(&counter);
        async move {
            *counter.lock().unwrap() += 1;
            Ok::<_, String>(())
        }
    })?;
    let metrics = worker.metrics();
    let stop = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(worker.run_until(stop.clone().cancelled_owned()));
    // Stop once nothing is queued or running any more, and a tick has run.
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let busy = queue
            .stats()
            .await?
            .iter()
            .any(|row| row.queued + row.running > 0);
        let ticked = log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("heartbeat"));
        if !busy && ticked {
            break;
        }
    }
    stop.cancel();
    running.await.expect("the worker ran")?;
    println!("worked everything in {:.2?}", started.elapsed());
    let lines = log.lock().unwrap().clone();
    let notified = *notified.lock().unwrap();
    Ok((lines, metrics.snapshot(), notified))
}

#[tokio::main]
async fn main() -> Result<(), taskq::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "taskq-demo.db".to_string());
    let queue = open(&path).await?;
    println!("queue file: {path}");
    enqueue(&queue).await?;
    control(&queue).await?;
    let (log, m, notified) = work(&queue).await?;
    for line in &log {
        println!("  {line}");
    }
    println!(
        "worker: {} tries, {} completed, {} retried, {} failed for good, {} panics",
        m.started, m.completed, m.retried, m.failed, m.panicked
    );
    println!("notify handler ran {notified} times");

    let failed = queue
        .list(&ListOptions {
            state: Some(State::Failed),
            ..ListOptions::default()
        })
        .await?;
    for task in &failed {
        let error = task.last_error.as_deref().unwrap_or("");
        println!(
            "failed task {} after {} tries, kept: {error}",
            task.id, task.tries
        );
        for attempt in &task.attempts {
            let worker = attempt.worker.as_ref().map(ToString::to_string);
            println!(
                "  try {}: {} by {}",
                attempt.number,
                attempt.outcome,
                worker.as_deref().unwrap_or("-")
            );
        }
    }
    println!(
        "{:<8} {:>7} {:>8} {:>7} {:>9}",
        "action", "queued", "running", "failed", "cancelled"
    );
    for row in queue.stats().await? {
        println!(
            "{:<8} {:>7} {:>8} {:>7} {:>9}",
            row.action, row.queued, row.running, row.failed, row.cancelled
        );
    }
    assert_eq!(failed.len(), 1, "exactly the poisoned task failed");
    // 20 + 1 crashed, + the urgent and the banner task, - the poisoned one.
    assert_eq!(notified, 22, "one follow-up per completed resize");
    Ok(())
}
