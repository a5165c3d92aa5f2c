//! The worker runtime on a real database: handlers, concurrency, heartbeat,
//! cancellation, shutdown, panics, follow-ups and wake-ups; outcomes that
//! need no timing are checked by draining the worker inline
//! (`taskq::testing::drain`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use taskq::testing::{self, Ended};
use taskq::worker::{MetricsSnapshot, Outcome, TaskContext, Worker, WorkerConfig, WorkerMetrics};
use taskq::{NewTask, QueueConfig, State, TaskId};
use tokio::sync::{mpsc, oneshot};

use super::{no_backoff, TestDb};

const PATIENCE: Duration = Duration::from_secs(30);

/// A worker running in the background until stopped.
pub(super) struct Running {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<taskq::Result<()>>,
    pub(super) metrics: Arc<WorkerMetrics>,
}

pub(super) fn start(worker: Worker) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = worker.metrics();
    let done = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    Running {
        stop,
        done,
        metrics,
    }
}

impl Running {
    pub(super) async fn stop(self) -> MetricsSnapshot {
        let _ = self.stop.send(());
        self.done.await.unwrap().unwrap();
        self.metrics.snapshot()
    }
}

/// Receives `n` messages, failing the test if they take too long.
pub(super) async fn receive<T>(rx: &mut mpsc::UnboundedReceiver<T>, n: usize) -> Vec<T> {
    let mut got = Vec::new();
    while got.len() < n {
        let message = tokio::time::timeout(PATIENCE, rx.recv()).await;
        got.push(message.expect("waited too long").expect("channel open"));
    }
    got
}

/// Waits until `check` holds, looking every 20 ms.
pub(super) async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "waited too long for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) fn config(concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        ..WorkerConfig::default()
    }
}

pub async fn worker_runs_handlers_for_several_actions(db: &dyn TestDb) {
    let queue = db.queue().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(queue.clone(), config(4));
    let a = tx.clone();
    worker
        .handle("numbers", move |n: u32, _ctx: TaskContext| {
            let a = a.clone();
            async move { a.send(format!("n{n}")).map_err(|e| e.to_string()) }
        })
        .unwrap();
    worker
        .handle("words", move |w: String, _ctx: TaskContext| {
            let tx = tx.clone();
            async move { tx.send(w).map_err(|e| e.to_string()) }
        })
        .unwrap();
    let running = start(worker);
    for i in 0..10u32 {
        queue.enqueue("numbers", &i).await.unwrap();
        queue.enqueue("words", &format!("w{i}")).await.unwrap();
    }
    let mut got = receive(&mut rx, 20).await;
    got.sort();
    let mut expected: Vec<String> = (0..10)
        .flat_map(|i| [format!("n{i}"), format!("w{i}")])
        .collect();
    expected.sort();
    assert_eq!(got, expected);
    until("completions", async || {
        queue.stats().await.unwrap().is_empty()
    })
    .await;
    let metrics = running.stop().await;
    assert_eq!(
        (metrics.completed, metrics.started, metrics.in_flight),
        (20, 20, 0)
    );
}

pub async fn worker_respects_concurrency_limits(db: &dyn TestDb) {
    let queue = db.queue().await;
    let running_now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let limited_now = Arc::new(AtomicUsize::new(0));
    let limited_most = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(queue.clone(), config(3));
    for (action, limited) in [("wide", false), ("narrow", true)] {
        let (running_now, most, tx) = (running_now.clone(), most.clone(), tx.clone());
        let (limited_now, limited_most) = (limited_now.clone(), limited_most.clone());
        let handler = move |_: u32, _ctx: TaskContext| {
            let (running_now, most, tx) = (running_now.clone(), most.clone(), tx.clone());
            let (limited_now, limited_most) = (limited_now.clone(), limited_most.clone());
            async move {
                let now = running_now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                if limited {
                    let now = limited_now.fetch_add(1, Ordering::SeqCst) + 1;
                    limited_most.fetch_max(now, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
                if limited {
                    limited_now.fetch_sub(1, Ordering::SeqCst);
                }
                running_now.fetch_sub(1, Ordering::SeqCst);
                tx.send(()).map_err(|e| e.to_string())
            }
        };
        if limited {
            worker.handle_with_limit(action, 1, handler).unwrap();
        } else {
            worker.handle(action, handler).unwrap();
        }
    }
    let tasks = (0..12)
        .map(|i| NewTask::json("wide", &i).unwrap())
        .chain((0..4).map(|i| NewTask::json("narrow", &i).unwrap()))
        .collect();
    queue.enqueue_many(tasks).await.unwrap();
    let running = start(worker);
    receive(&mut rx, 16).await;
    running.stop().await;
    assert_eq!(
        most.load(Ordering::SeqCst),
        3,
        "the worker ran up to its limit, never more"
    );
    assert_eq!(
        limited_most.load(Ordering::SeqCst),
        1,
        "the action's own limit held"
    );
}

pub async fn a_worker_with_slow_handlers_holds_only_the_tasks_it_runs(db: &dyn TestDb) {
    let queue = db.queue().await;
    let go = Arc::new(tokio::sync::Semaphore::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(queue.clone(), config(3));
    let finish = Arc::clone(&go);
    worker
        .handle("slow", move |i: u32, _ctx: TaskContext| {
            let (go, tx) = (Arc::clone(&finish), tx.clone());
            async move {
                tx.send(i).map_err(|e| e.to_string())?;
                go.acquire().await.map_err(|e| e.to_string())?.forget();
                Ok::<_, String>(())
            }
        })
        .unwrap();
    let tasks = (0..8).map(|i| NewTask::json("slow", &i).unwrap()).collect();
    queue.enqueue_many(tasks).await.unwrap();
    let running = start(worker);
    receive(&mut rx, 3).await;
    // Handlers that take a second, far longer than a claim: when one
    // finishes, the next claim takes a task for its slot only, none for
    // the two busy slots, nor any to start later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    go.add_permits(1);
    // The fourth task started: the claim that took it has been answered,
    // and with all three slots busy no other claim is made.
    receive(&mut rx, 1).await;
    until("the first completion recorded", async || {
        running.metrics.snapshot().completed >= 1
    })
    .await;
    let stats = queue.stats().await.unwrap();
    let held: Vec<_> = stats.iter().map(|s| (s.running, s.queued)).collect();
    assert_eq!(
        held,
        [(3, 4)],
        "tasks (running, queued) with 3 handlers busy"
    );
    go.add_permits(100);
    receive(&mut rx, 4).await;
    running.stop().await;
}

pub async fn heartbeat_keeps_a_long_task_from_running_twice(db: &dyn TestDb) {
    let runs = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let queue = db.queue().await;
        let mut worker = Worker::new(queue, config(2));
        let (runs, tx) = (runs.clone(), tx.clone());
        worker
            .handle("long", move |_: u32, ctx: TaskContext| {
                let (runs, tx) = (runs.clone(), tx.clone());
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Four times the lease: only heartbeats keep it.
                    tokio::time::sleep(Duration::from_millis(1200)).await;
                    tx.send(ctx.id()).map_err(|e| e.to_string())
                }
            })
            .unwrap();
        workers.push(start(worker));
    }
    let queue = db.queue().await;
    let task = NewTask::json("long", &1)
        .unwrap()
        .timeout(Duration::from_millis(300));
    let id = queue.enqueue_task(task).await.unwrap().id;
    assert_eq!(receive(&mut rx, 1).await, vec![id]);
    until("the completion", async || {
        queue.get(id).await.unwrap().is_none()
    })
    .await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "never taken over while its worker lived"
    );
    for worker in workers {
        assert_eq!(worker.stop().await.lease_lost, 0);
    }
}

pub async fn lost_lease_cancels_the_handler(db: &dyn TestDb) {
    let queue = db.queue().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(queue.clone(), config(1));
    worker
        .handle("doomed", move |_: u32, ctx: TaskContext| {
            let tx = tx.clone();
            async move {
                tx.send("started").unwrap();
                ctx.cancelled().await;
                tx.send("cancelled").unwrap();
                Ok::<_, String>(Outcome::complete())
            }
        })
        .unwrap();
    let running = start(worker);
    let task = NewTask::json("doomed", &1)
        .unwrap()
        .timeout(Duration::from_millis(300));
    let id = queue.enqueue_task(task).await.unwrap().id;
    assert_eq!(receive(&mut rx, 1).await, vec!["started"]);
    // Someone takes the task away: the next heartbeat notices.
    queue.delete(id).await.unwrap();
    assert_eq!(receive(&mut rx, 1).await, vec!["cancelled"]);
    let metrics = running.metrics.clone();
    until("the lost lease to be counted", async || {
        metrics.snapshot().lease_lost == 1
    })
    .await;
    let metrics = running.stop().await;
    assert_eq!(
        metrics.completed, 0,
        "the result of a lost lease is discarded"
    );
    assert_eq!(metrics.refused, 0, "no result reached the database");
}

pub async fn a_result_after_a_takeover_is_refused_and_counted(db: &dyn TestDb) {
    let queue = db.queue().await;
    let mut worker = Worker::new(queue.clone(), config(1));
    let for_handler = queue.clone();
    worker
        .handle("taken", move |_: u32, ctx: TaskContext| {
            let queue = for_handler.clone();
            async move {
                // Taken away while it runs, before any heartbeat.
                queue.delete(ctx.id()).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(Outcome::complete())
            }
        })
        .unwrap();
    let running = start(worker);
    queue.enqueue("taken", &1).await.unwrap();
    let metrics = running.metrics.clone();
    until("the refused completion to be counted", async || {
        metrics.snapshot().refused == 1
    })
    .await;
    let metrics = running.stop().await;
    assert_eq!(
        (metrics.completed, metrics.lease_lost, metrics.refused),
        (0, 1, 1)
    );
}

pub async fn shutdown_finishes_quick_tasks_and_releases_the_rest(db: &dyn TestDb) {
    let queue = db.queue().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let worker_config = WorkerConfig {
        concurrency: 2,
        shutdown_timeout: Duration::from_millis(300),
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(queue.clone(), worker_config);
    worker
        .handle("mixed", move |slow: bool, _ctx: TaskContext| {
            let tx = tx.clone();
            async move {
                tx.send(slow).unwrap();
                if slow {
                    std::future::pending::<()>().await; // ignores cancellation
                } else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok::<_, String>(())
            }
        })
        .unwrap();
    let stuck = queue.enqueue("mixed", &true).await.unwrap();
    let quick = queue.enqueue("mixed", &false).await.unwrap();
    let running = start(worker);
    let mut started = receive(&mut rx, 2).await;
    started.sort();
    assert_eq!(started, vec![false, true]);
    let began = Instant::now();
    let metrics = running.stop().await;
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "the grace period is bounded"
    );
    assert_eq!((metrics.completed, metrics.released), (1, 1));
    assert!(
        queue.get(quick).await.unwrap().is_none(),
        "the quick task finished during the grace period"
    );
    let task = queue.get(stuck).await.unwrap().unwrap();
    assert_eq!(
        (task.state, task.tries),
        (State::Queued, 0),
        "released, the try not counted"
    );

    // A second worker picks it up at once.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut second = Worker::new(queue.clone(), config(1));
    second
        .handle("mixed", move |_: bool, ctx: TaskContext| {
            let tx = tx.clone();
            async move { tx.send(ctx.id()).map_err(|e| e.to_string()) }
        })
        .unwrap();
    let running = start(second);
    assert_eq!(receive(&mut rx, 1).await, vec![stuck]);
    until("the completion", async || {
        queue.get(stuck).await.unwrap().is_none()
    })
    .await;
    running.stop().await;
}

pub async fn a_panicking_handler_fails_the_try_and_the_worker_survives(db: &dyn TestDb) {
    let queue = db.queue().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(queue.clone(), config(1));
    worker
        .handle("fragile", move |word: String, _ctx: TaskContext| {
            let tx = tx.clone();
            async move {
                if word == "boom" {
                    panic!("cannot handle {word}");
                }
                tx.send(word).map_err(|e| e.to_string())
            }
        })
        .unwrap();
    let boom = queue
        .enqueue_task(NewTask::json("fragile", &"boom").unwrap().max_tries(1))
        .await
        .unwrap()
        .id;
    queue.enqueue("fragile", &"fine").await.unwrap();
    let running = start(worker);
    assert_eq!(receive(&mut rx, 1).await, vec!["fine".to_string()]);
    until("the failure", async || {
        queue.get(boom).await.unwrap().unwrap().state == State::Failed
    })
    .await;
    let task = queue.get(boom).await.unwrap().unwrap();
    let error = task.last_error.unwrap();
    assert!(
        error.contains("panicked") && error.contains("cannot handle boom"),
        "{error}"
    );
    let metrics = running.stop().await;
    assert_eq!(
        (metrics.panicked, metrics.failed, metrics.completed),
        (1, 1, 1)
    );
}

pub async fn handler_follow_ups_record_their_parent(db: &dyn TestDb) {
    let queue = db.queue().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(queue.clone(), config(2));
    worker
        .handle("order", |n: u32, _ctx: TaskContext| async move {
            let ship = NewTask::json("ship", &n).map_err(|e| e.to_string())?;
            Ok::<_, String>(Outcome::follow_up(vec![ship]))
        })
        .unwrap();
    worker
        .handle("ship", move |n: u32, ctx: TaskContext| {
            let tx = tx.clone();
            async move { tx.send((n, ctx.parent())).map_err(|e| e.to_string()) }
        })
        .unwrap();
    let running = start(worker);
    let order = queue.enqueue("order", &7u32).await.unwrap();
    assert_eq!(receive(&mut rx, 1).await, vec![(7, Some(order))]);
    running.stop().await;
}

/// A queue that polls only every 30 s, and a running worker with
/// `concurrency` handlers of `action` that send each payload and when it
/// started; returned once the worker found the queue empty and went idle.
async fn idle_worker(
    db: &dyn TestDb,
    action: &str,
    concurrency: usize,
) -> (
    taskq::Queue,
    Running,
    mpsc::UnboundedReceiver<(u32, Instant)>,
) {
    let slow_poll = QueueConfig {
        poll_interval: Duration::from_secs(30),
        ..QueueConfig::default()
    };
    let queue = db.queue_with(slow_poll).await;
    let (tx, rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(queue.clone(), config(concurrency));
    worker
        .handle(action, move |n: u32, _ctx: TaskContext| {
            let tx = tx.clone();
            async move { tx.send((n, Instant::now())).map_err(|e| e.to_string()) }
        })
        .unwrap();
    let running = start(worker);
    tokio::time::sleep(Duration::from_millis(200)).await;
    (queue, running, rx)
}

pub async fn an_idle_worker_starts_new_tasks_within_milliseconds(db: &dyn TestDb) {
    let (queue, running, mut rx) = idle_worker(db, "ping", 2).await;
    let mut latencies = Vec::new();
    for i in 0..5u32 {
        let enqueued = Instant::now();
        queue.enqueue("ping", &i).await.unwrap();
        let (_, started) = receive(&mut rx, 1).await[0];
        latencies.push(started.saturating_duration_since(enqueued));
    }
    // From another connection: only the backend's own wake-ups (LISTEN,
    // SQLite's data version) can beat the 30 s poll.
    if queue.supports_notify() {
        let other = db.queue().await;
        let enqueued = Instant::now();
        other.enqueue("ping", &99u32).await.unwrap();
        let (_, started) = receive(&mut rx, 1).await[0];
        latencies.push(started.saturating_duration_since(enqueued));
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    assert!(
        median < Duration::from_millis(200),
        "woken, not polled: {latencies:?}"
    );
    assert!(
        latencies.iter().all(|l| *l < Duration::from_secs(5)),
        "{latencies:?}"
    );
    running.stop().await;
}

pub async fn an_idle_worker_takes_tasks_of_its_own_process_without_claims(db: &dyn TestDb) {
    let (queue, running, mut rx) = idle_worker(db, "trickle", 2).await;
    // Enqueued through the worker's own queue: each is inserted already
    // claimed for the waiting worker and handed over.
    for i in 0..10u32 {
        queue.enqueue("trickle", &i).await.unwrap();
        receive(&mut rx, 1).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // Enqueued through another queue of this process on the same
    // database (its own backend and connections): handed over just the
    // same, the queues share their idle workers' offers.
    let other = db.queue().await;
    for i in 10..20u32 {
        other.enqueue("trickle", &i).await.unwrap();
        receive(&mut rx, 1).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let metrics = running.stop().await;
    assert_eq!(metrics.completed, 20);
    assert_eq!(metrics.handed_over, 20);
    // One claim found the queue empty at the start; spare ones are
    // allowed for wake-ups that cross a wait (SQLite's watch of the file
    // sees each commit too).
    assert!(
        metrics.claims >= 1 && metrics.claims <= 8,
        "{} claims for 20 tasks handed over",
        metrics.claims
    );
}

pub async fn a_task_handed_over_never_overtakes_an_older_ready_one(db: &dyn TestDb) {
    let (queue, running, mut rx) = idle_worker(db, "order", 1).await;
    // Becomes ready while the worker waits (it polls every 30 s), unseen.
    queue
        .enqueue_task(
            NewTask::json("order", &1u32)
                .unwrap()
                .delay(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Not handed over: the first task is older and ready.
    queue.enqueue("order", &2u32).await.unwrap();
    let order: Vec<u32> = receive(&mut rx, 2)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(order, [1, 2], "oldest first");
    running.stop().await;
}

pub async fn undecodable_payloads_fail_for_good(db: &dyn TestDb) {
    let queue = db.queue().await;
    let mut worker = Worker::new(queue.clone(), config(1));
    worker
        .handle("typed", |_: Vec<u32>, _ctx: TaskContext| async {
            Ok::<_, String>(())
        })
        .unwrap();
    let id = queue
        .enqueue_task(NewTask::raw("typed", b"{\"not\": \"a list\"}".to_vec()))
        .await
        .unwrap()
        .id;
    let drained = testing::drain(&worker).await.unwrap();
    assert_eq!(drained.runs.len(), 1, "no retry: it could never succeed");
    assert_eq!(drained.runs[0].ended, Ended::Failed);
    assert!(drained.runs[0]
        .error
        .as_deref()
        .unwrap()
        .contains("could not be decoded"));
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!((task.state, task.tries), (State::Failed, 1));
    assert_eq!(worker.metrics().snapshot().failed, 1);
}

pub async fn retry_and_snooze_outcomes_are_applied(db: &dyn TestDb) {
    let queue = db.queue_with(no_backoff()).await;
    let snoozed = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(queue.clone(), config(2));
    let retry_tx = tx.clone();
    worker
        .handle("flaky", move |_: u32, ctx: TaskContext| {
            let tx = retry_tx.clone();
            async move {
                if ctx.tries() == 1 {
                    return Err("not yet".to_string());
                }
                tx.send(("flaky", ctx.tries())).map_err(|e| e.to_string())
            }
        })
        .unwrap();
    worker
        .handle("sleepy", move |_: u32, ctx: TaskContext| {
            let (tx, snoozed) = (tx.clone(), snoozed.clone());
            async move {
                if !snoozed.swap(true, Ordering::SeqCst) {
                    return Ok::<_, String>(Outcome::snooze(Duration::from_millis(50)));
                }
                tx.send(("sleepy", ctx.tries()))
                    .map_err(|e| e.to_string())?;
                Ok(Outcome::complete())
            }
        })
        .unwrap();
    let flaky: TaskId = queue.enqueue("flaky", &1u32).await.unwrap();
    queue.enqueue("sleepy", &1u32).await.unwrap();
    let running = start(worker);
    let mut got = receive(&mut rx, 2).await;
    got.sort();
    assert_eq!(
        got,
        vec![("flaky", 2), ("sleepy", 1)],
        "a snooze does not count the try"
    );
    until("the completion", async || {
        queue.get(flaky).await.unwrap().is_none()
    })
    .await;
    let metrics = running.stop().await;
    assert_eq!(
        (metrics.retried, metrics.snoozed, metrics.completed),
        (1, 1, 2)
    );
}

pub async fn a_handler_that_stops_when_cancelled_at_shutdown_is_released(db: &dyn TestDb) {
    let queue = db.queue().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let worker_config = WorkerConfig {
        concurrency: 1,
        shutdown_timeout: Duration::from_millis(200),
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(queue.clone(), worker_config);
    worker
        .handle("polite", move |_: u32, ctx: TaskContext| {
            let tx = tx.clone();
            async move {
                tx.send(()).unwrap();
                ctx.cancelled().await;
                Err::<(), _>("stopped: the worker is shutting down")
            }
        })
        .unwrap();
    let id = queue.enqueue("polite", &1u32).await.unwrap();
    let running = start(worker);
    receive(&mut rx, 1).await;
    let metrics = running.stop().await;
    assert_eq!((metrics.released, metrics.retried), (1, 0));
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(
        (task.state, task.tries),
        (State::Queued, 0),
        "released, the try not counted"
    );
    assert_eq!(task.last_error, None);
}

pub async fn invalid_follow_ups_fail_the_try_with_the_reason(db: &dyn TestDb) {
    let queue = db.queue_with(no_backoff()).await;
    let mut worker = Worker::new(queue.clone(), config(1));
    worker
        .handle("parent", |_: u32, _ctx: TaskContext| async {
            Ok::<_, String>(Outcome::follow_up(vec![NewTask::raw("", Vec::new())]))
        })
        .unwrap();
    let id = queue
        .enqueue_task(NewTask::json("parent", &1).unwrap().max_tries(2))
        .await
        .unwrap()
        .id;
    // Each try fails at once, not after its lease: both run in one drain.
    let drained = testing::drain(&worker).await.unwrap();
    let ended: Vec<Ended> = drained.runs.iter().map(|run| run.ended).collect();
    assert_eq!(ended, vec![Ended::Retried, Ended::Failed]);
    for run in &drained.runs {
        let error = run.error.as_deref().unwrap();
        assert!(error.contains("the action name is empty"), "{error}");
    }
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!((task.state, task.tries), (State::Failed, 2));
    let metrics = worker.metrics().snapshot();
    assert_eq!(
        (metrics.retried, metrics.failed, metrics.completed),
        (1, 1, 0)
    );
}

/// A handler's result is kept with its succeeded task, on a queue that
/// otherwise deletes completed tasks; a result too large is refused before
/// the lease is spent; the result of a lease's own completion too.
pub async fn a_handlers_result_is_kept_with_its_succeeded_task(db: &dyn TestDb) {
    let queue = db.queue_with(super::no_backoff()).await;
    let mut worker =
        taskq::worker::Worker::new(queue.clone(), taskq::worker::WorkerConfig::default());
    worker
        .handle(
            "resize",
            |file: String, _ctx: taskq::worker::TaskContext| async move {
                let follow = taskq::NewTask::json("upload", &file).map_err(|e| e.to_string())?;
                let result = taskq::TaskResult::json(
                    &serde_json::json!({ "thumbnail": format!("small-{file}") }),
                )
                .map_err(|e| e.to_string())?;
                Ok::<_, String>(taskq::worker::Outcome::follow_up(vec![follow]).with_result(result))
            },
        )
        .unwrap()
        .handle(
            "plain",
            |_: u32, _ctx: taskq::worker::TaskContext| async move { Ok::<_, String>(()) },
        )
        .unwrap();
    let resized = queue.enqueue("resize", &"cat.png").await.unwrap();
    let plain = queue.enqueue("plain", &1u32).await.unwrap();
    taskq::testing::drain(&worker).await.unwrap();

    let task = queue
        .get(resized)
        .await
        .unwrap()
        .expect("kept for its result");
    assert_eq!(task.state, taskq::State::Succeeded);
    let result: Option<serde_json::Value> = task.result_json().unwrap();
    assert_eq!(
        result,
        Some(serde_json::json!({ "thumbnail": "small-cat.png" }))
    );
    assert!(
        queue.get(plain).await.unwrap().is_none(),
        "no result: deleted as before"
    );
    let uploads = queue
        .list(&taskq::ListOptions {
            parent: Some(resized),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(uploads.len(), 1, "the follow-up committed with it");
    assert_eq!(uploads[0].result, None, "only succeeded tasks have one");
    assert!(matches!(
        task.result_json::<u32>(),
        Err(taskq::Error::ResultDecode { .. })
    ));

    let big = "x".repeat(taskq::MAX_RESULT_LEN);
    assert!(matches!(
        taskq::TaskResult::json(&big),
        Err(taskq::Error::InvalidInput {
            field: "result",
            ..
        })
    ));
    assert!(taskq::TaskResult::json_bytes(b"{not json".to_vec()).is_err());
    let id = queue.enqueue("resize", &"dog.png").await.unwrap();
    let lease = queue.claim("resize").await.unwrap().unwrap();
    lease
        .complete_with_result(taskq::TaskResult::json(&42).unwrap(), Vec::new())
        .await
        .unwrap();
    assert_eq!(
        queue.get(id).await.unwrap().unwrap().result.as_deref(),
        Some(&b"42"[..])
    );
    let stats = super::reported_stats(&queue).await;
    assert_eq!(
        stats.get(&("resize".to_owned(), taskq::State::Succeeded)),
        Some(&2)
    );
}
