//! The main job of taskq, end to end, on an embedded SQLite file:
//!
//!     cargo run --example demo
//!
//! It enqueues image-resize tasks, works them with three concurrent
//! workers, abandons one lease the way a crashed worker would (the task
//! runs again once the lease expires), lets a poisoned task use up its
//! tries and fail for good, and prints what happened.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use taskq::sqlite::{SqliteBackend, SqliteConfig};
use taskq::{Backoff, FailOutcome, ListOptions, NewTask, Queue, QueueConfig, State};

#[derive(Serialize, Deserialize)]
struct Resize {
    image: String,
    poisoned: bool,
}

#[tokio::main]
async fn main() -> Result<(), taskq::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "taskq-demo.db".to_string());
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    // Short backoffs so that the demo's retries happen within a second.
    let config = QueueConfig {
        backoff: Backoff {
            initial: Duration::from_millis(50),
            ..Backoff::default()
        },
        ..QueueConfig::default()
    };
    let backend = SqliteBackend::open(&path, SqliteConfig::default()).await?;
    let queue = Queue::new(backend, config)?;
    println!("queue file: {path}");

    // 1. A worker claims a task with a short lease and "crashes": it never
    //    completes, so the lease runs out and the task runs again.
    let doomed = queue
        .enqueue_task(
            NewTask::json(
                "resize",
                &Resize {
                    image: "img-crash.png".into(),
                    poisoned: false,
                },
            )?
            .timeout(Duration::from_millis(300)),
        )
        .await?;
    let claimed = queue.claim("resize").await?.expect("the task is queued");
    assert_eq!(claimed.id(), doomed);
    println!("worker 0 claimed task {doomed} and crashed (its lease of 300 ms will expire)");
    drop(claimed);

    // 2. Enqueue 20 tasks in one transaction; image 13 is poisoned.
    let tasks = (1..=20)
        .map(|n| {
            let task = Resize {
                image: format!("img-{n:02}.png"),
                poisoned: n == 13,
            };
            NewTask::json("resize", &task).map(|t| t.max_tries(3))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ids = queue.enqueue_many(tasks).await?;
    println!(
        "enqueued {} resize tasks (ids {}..={})",
        ids.len(),
        ids[0],
        ids[ids.len() - 1]
    );

    // 3. Three workers drain the queue; each completion of a normal task
    //    enqueues a follow-up "notify" task in the same transaction.
    let log = Arc::new(Mutex::new(BTreeMap::<String, Vec<String>>::new()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 1..=3 {
        let (queue, log) = (queue.clone(), Arc::clone(&log));
        workers.push(tokio::spawn(async move {
            let mut done = 0;
            // Work until nothing is queued or leased any more.
            while !finished(&queue).await? {
                let Some(lease) = queue.claim("resize").await? else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let job: Resize = lease.payload_json()?;
                let (id, tries) = (lease.id(), lease.task().tries);
                let line = if job.poisoned {
                    match lease.fail("the image file is corrupt").await? {
                        FailOutcome::Retrying { after } => {
                            format!("task {id} try {tries}: failed, retrying in {after:?}")
                        }
                        FailOutcome::Failed => format!("task {id} try {tries}: failed for good"),
                    }
                } else {
                    let follow_up = NewTask::json("notify", &format!("{} resized", job.image))?;
                    lease.complete_with(vec![follow_up]).await?;
                    done += 1;
                    if tries > 1 {
                        format!("task {id} try {tries}: completed after its lease expired")
                    } else {
                        continue;
                    }
                };
                log.lock()
                    .unwrap()
                    .entry(format!("worker {worker}"))
                    .or_default()
                    .push(line);
            }
            Ok::<_, taskq::Error>((worker, done))
        }));
    }
    for worker in workers {
        let (worker, done) = worker.await.expect("the worker ran")?;
        println!("worker {worker} completed {done} tasks");
    }
    for (worker, lines) in log.lock().unwrap().iter() {
        for line in lines {
            println!("{worker}: {line}");
        }
    }
    println!("drained in {:.2?}", started.elapsed());

    // 4. What is left: the failed task, kept for inspection, and the
    //    follow-ups, each recording its parent.
    let failed = queue
        .list(&ListOptions {
            state: Some(State::Failed),
            ..ListOptions::default()
        })
        .await?;
    for task in &failed {
        println!(
            "failed task {} after {} tries: {}",
            task.id,
            task.tries,
            task.last_error.as_deref().unwrap_or("")
        );
    }
    let notify = queue
        .list(&ListOptions {
            action: Some("notify".into()),
            limit: 1,
            ..ListOptions::default()
        })
        .await?;
    if let Some(first) = notify.first() {
        let parent = first.parent.map_or("none".to_string(), |p| p.to_string());
        println!(
            "follow-up task {} records its parent, task {parent}",
            first.id
        );
    }
    println!(
        "{:<10} {:>7} {:>8} {:>7}",
        "action", "queued", "running", "failed"
    );
    for row in queue.stats().await? {
        println!(
            "{:<10} {:>7} {:>8} {:>7}",
            row.action, row.queued, row.running, row.failed
        );
    }
    assert_eq!(failed.len(), 1, "exactly the poisoned task failed");
    assert_eq!(
        queue.len("notify").await?,
        20,
        "one follow-up per completed task"
    );
    Ok(())
}

/// Whether no resize task is queued or running any more.
async fn finished(queue: &Queue) -> Result<bool, taskq::Error> {
    let stats = queue.stats().await?;
    Ok(stats
        .iter()
        .filter(|row| row.action == "resize")
        .all(|row| row.queued == 0 && row.running == 0))
}
