//! The standard workloads of DESIGN.md section 4, through taskq's public
//! API: queue `bench`, payload `{"i": n, "t": enqueue_unix_micros}`, a
//! handler that does nothing but complete.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use taskq::worker::{CancellationToken, TaskContext, Worker, WorkerConfig};
use taskq::{NewTask, Queue};

use crate::report::{percentile, Run};

/// A benchmark task's payload: its number, and when it was made (Unix
/// microseconds).
#[derive(Serialize, Deserialize)]
pub(crate) struct Payload {
    i: usize,
    pub(crate) t: i64,
}

pub(crate) fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// What the workloads' tasks carry besides their payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Carry {
    /// Nothing: the standard workloads.
    Plain,
    /// A priority of 0 to 3.
    Priorities,
    /// A unique key of its own.
    Keys,
}

static CARRY: OnceLock<Carry> = OnceLock::new();

impl Carry {
    /// What `--tasks` names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Carry::Plain => "plain",
            Carry::Priorities => "priorities",
            Carry::Keys => "keys",
        }
    }

    /// The one `--tasks` names (plain for any other name).
    pub(crate) fn named(name: &str) -> Carry {
        [Carry::Priorities, Carry::Keys]
            .into_iter()
            .find(|carry| carry.name() == name)
            .unwrap_or(Carry::Plain)
    }
}

/// Sets what the tasks of this run carry (once, before the workloads).
pub(crate) fn carry(carry: Carry) {
    let _ = CARRY.set(carry);
}

/// What the tasks of this run carry, as `--tasks` names it.
pub(crate) fn carried() -> &'static str {
    CARRY.get().copied().unwrap_or(Carry::Plain).name()
}

pub(crate) fn task(i: usize) -> NewTask {
    let task = NewTask::json("bench", &Payload { i, t: now_micros() }).expect("a payload encodes");
    match CARRY.get().copied().unwrap_or(Carry::Plain) {
        Carry::Plain => task,
        Carry::Priorities => task.priority((i % 4) as i16),
        Carry::Keys => task.unique_key(format!("key-{i}")),
    }
}

fn rate(n: usize, started: Instant) -> Run {
    Run {
        rate: Some(n as f64 / started.elapsed().as_secs_f64()),
        ..Run::default()
    }
}

/// `n` enqueues, each its own call and commit, one producer.
pub async fn enqueue_single(queue: &Queue, n: usize) -> Run {
    let started = Instant::now();
    for i in 0..n {
        queue.enqueue_task(task(i)).await.expect("enqueue");
    }
    rate(n, started)
}

/// `n` enqueues one after another through the blocking facade, on a plain
/// thread of its own, as a synchronous program makes them.
pub async fn enqueue_single_blocking(queue: &Queue, n: usize) -> Run {
    let queue = queue.clone();
    let thread = std::thread::spawn(move || {
        let queue = taskq::blocking::Queue::new(queue).expect("a blocking queue");
        let started = Instant::now();
        for i in 0..n {
            queue.enqueue_task(task(i)).expect("enqueue");
        }
        rate(n, started)
    });
    tokio::task::spawn_blocking(move || thread.join().expect("the producer thread ran"))
        .await
        .expect("joined")
}

/// `n` enqueues from `producers` concurrent producers, each its own call.
pub async fn enqueue_concurrent(queue: &Queue, n: usize, producers: usize) -> Run {
    let started = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let queue = queue.clone();
            tokio::spawn(async move {
                for i in (p..n).step_by(producers) {
                    queue.enqueue_task(task(i)).await.expect("enqueue");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("a producer ran");
    }
    rate(n, started)
}

/// `n` tasks in batches of `batch`.
pub async fn enqueue_bulk(queue: &Queue, n: usize, batch: usize) -> Run {
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let tasks = (i..(i + batch).min(n)).map(task).collect();
        queue.enqueue_many(tasks).await.expect("enqueue a batch");
        i += batch;
    }
    rate(n, started)
}

/// Loads `n` tasks without timing it.
pub async fn preload(queue: &Queue, n: usize) {
    let mut i = 0;
    while i < n {
        let tasks = (i..(i + 1000).min(n)).map(task).collect();
        queue.enqueue_many(tasks).await.expect("preload");
        i += 1000;
    }
}

/// Loads `n` tasks without timing it, each with one of `keys`
/// concurrency keys, in turn.
pub async fn preload_keyed(queue: &Queue, n: usize, keys: usize) {
    let mut i = 0;
    while i < n {
        let tasks = (i..(i + 1000).min(n))
            .map(|i| task(i).concurrency_key(format!("key-{}", i % keys)))
            .collect();
        queue.enqueue_many(tasks).await.expect("preload");
        i += 1000;
    }
}

/// Loads `diamonds` workflows of four tasks each (a, then b and c, then
/// d), in batches of 250 workflows, without timing it.
pub async fn preload_diamonds(queue: &Queue, diamonds: usize) {
    let mut done = 0;
    while done < diamonds {
        let mut tasks = Vec::new();
        for i in done..(done + 250).min(diamonds) {
            let a = tasks.len();
            let after = |mut task: NewTask, on: &[usize]| {
                task.options.depends_on = on
                    .iter()
                    .map(|&at| taskq::Dependency::Earlier(at))
                    .collect();
                task
            };
            tasks.push(task(4 * i));
            tasks.push(after(task(4 * i + 1), &[a]));
            tasks.push(after(task(4 * i + 2), &[a]));
            tasks.push(after(task(4 * i + 3), &[a + 1, a + 2]));
        }
        queue.enqueue_many(tasks).await.expect("preload diamonds");
        done = (done + 250).min(diamonds);
    }
}

/// Loads one workflow of `sources` tasks and a sink that waits for all
/// of them, in one batch, without timing it.
pub async fn preload_fan_in(queue: &Queue, sources: usize) {
    let mut tasks: Vec<NewTask> = (0..sources).map(task).collect();
    let mut sink = task(sources);
    sink.options.depends_on = (0..sources).map(taskq::Dependency::Earlier).collect();
    tasks.push(sink);
    queue.enqueue_many(tasks).await.expect("preload fan-in");
}

/// Runs a worker of `concurrency` with a do-nothing handler until `n`
/// tasks are completed; the worker's defaults otherwise.
pub async fn drain(queue: &Queue, n: usize, concurrency: usize) -> Run {
    let config = WorkerConfig {
        concurrency,
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(queue.clone(), config);
    worker
        .handle(
            "bench",
            |_: serde::de::IgnoredAny, _ctx: TaskContext| async {
                Ok::<_, std::convert::Infallible>(())
            },
        )
        .expect("register");
    let metrics = worker.metrics();
    let stop = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(worker.run_until(stop.clone().cancelled_owned()));
    while metrics.snapshot().completed < n as u64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let run = rate(n, started);
    stop.cancel();
    running
        .await
        .expect("the worker ran")
        .expect("the worker stopped");
    run
}

/// Who enqueues the tasks of a latency run.
pub enum Producer<'a> {
    /// A queue of this process: the worker's own, or another one on the
    /// same database.
    Queue(&'a Queue),
    /// Another process: this benchmark, started again with `--produce`.
    Process(std::process::Command),
}

/// Enqueues `n` tasks at `per_second` through `producer`; the time each
/// enqueue call took to be acknowledged.
pub async fn produce(producer: &Queue, n: usize, per_second: u32) -> Vec<Duration> {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
    let mut acks = Vec::with_capacity(n);
    for i in 0..n {
        tick.tick().await;
        let called = Instant::now();
        producer.enqueue_task(task(i)).await.expect("enqueue");
        acks.push(called.elapsed());
    }
    acks
}

/// An idle worker on `queue`; `n` tasks enqueued at `per_second` by
/// `producer`; the time from each enqueue to its handler's start, and
/// (for a producer of this process) from each enqueue call to its
/// acknowledgement.
pub async fn latency(queue: &Queue, producer: Producer<'_>, n: usize, per_second: u32) -> Run {
    let waits = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let mut worker = Worker::new(queue.clone(), WorkerConfig::default());
    let seen = Arc::clone(&waits);
    worker
        .handle("bench", move |payload: Payload, _ctx: TaskContext| {
            let waited = now_micros() - payload.t;
            seen.lock()
                .unwrap()
                .push(Duration::from_micros(waited.max(0) as u64));
            async { Ok::<_, std::convert::Infallible>(()) }
        })
        .expect("register");
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run_until(stop.clone().cancelled_owned()));
    tokio::time::sleep(Duration::from_millis(200)).await; // idle first
    let mut acks = match producer {
        Producer::Queue(producer) => produce(producer, n, per_second).await,
        Producer::Process(mut command) => {
            let status = tokio::task::spawn_blocking(move || command.status())
                .await
                .expect("the producer process ran");
            assert!(
                status.as_ref().is_ok_and(|s| s.success()),
                "the producer process failed: {status:?}"
            );
            Vec::new()
        }
    };
    acks.sort();
    while waits.lock().unwrap().len() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.cancel();
    running
        .await
        .expect("the worker ran")
        .expect("the worker stopped");
    let mut waits = waits.lock().unwrap().clone();
    waits.sort();
    Run {
        p50: Some(percentile(&waits, 0.50)),
        p99: Some(percentile(&waits, 0.99)),
        enqueue_ack: (!acks.is_empty()).then(|| (percentile(&acks, 0.50), percentile(&acks, 0.99))),
        ..Run::default()
    }
}
