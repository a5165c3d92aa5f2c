//! The blocking facade on both backends, as a synchronous program uses it:
//! every call, the worker, the backends' background work (PostgreSQL's
//! listener, batched completions and wake-ups) on the facade's runtime, a
//! worker woken by another queue's enqueues, and the typed refusal inside
//! an async runtime.

use std::time::{Duration, Instant};

use taskq::blocking::{Queue, Worker};
use taskq::worker::{CancellationToken, TaskContext, WorkerConfig};
use taskq::{
    CancelOutcome, ConnectOptions, Error, ListOptions, NewTask, QueueConfig, RetryKey, State,
};

/// A database URL per backend, each test with a fresh file or schema.
fn urls() -> Vec<(String, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![(
        format!("sqlite://{}", dir.path().join("b.db").display()),
        Some(dir),
    )];
    if cfg!(feature = "postgres") {
        let base = std::env::var("TASKQ_TEST_POSTGRES_URL").expect(
            "the PostgreSQL tests need a server: run ./scripts/test, which starts a throwaway one",
        );
        urls.push((format!("{base}?schema=b_{:016x}", fastrand::u64(..)), None));
    }
    urls
}

fn is_runtime_refusal<T: std::fmt::Debug>(result: taskq::Result<T>) -> bool {
    matches!(
        result,
        Err(Error::InvalidInput {
            field: "runtime",
            ..
        })
    )
}

#[test]
fn every_control_call_works_on_both_backends() {
    for (url, _dir) in urls() {
        let queue = Queue::connect(&url).unwrap();
        let keyed = |n: u32| {
            NewTask::json("k", &n)
                .unwrap()
                .unique_key("key")
                .priority(2)
        };
        let first = queue.enqueue_task(keyed(1)).unwrap();
        assert!(queue.enqueue_task(keyed(2)).unwrap().duplicate, "{url}");
        assert_eq!(
            queue.cancel_key("k", "key").unwrap(),
            Some((first.id, CancelOutcome::Cancelled))
        );
        queue.retry_with(first.id, RetryKey::Clear).unwrap();
        assert!(queue.pause("k").unwrap());
        assert_eq!(queue.paused().unwrap(), ["k"]);
        assert!(queue.claim("k").unwrap().is_none(), "{url}");
        assert!(queue.resume("k").unwrap());
        let lease = queue.claim("k").unwrap().unwrap();
        assert_eq!(lease.task().priority, 2);
        assert_eq!(queue.cancel(lease.id()).unwrap(), CancelOutcome::Requested);
        lease.cancel("no longer wanted").unwrap();
        let task = queue.get(first.id).unwrap().unwrap();
        assert_eq!(task.state, State::Cancelled, "{url}");
        assert_eq!(task.attempts.len(), 1);
        queue.enqueue("m", &1).unwrap();
        let done = queue.cancel_many("m", State::Queued).unwrap();
        assert_eq!((done.cancelled, done.requested), (1, 0));
        let cancelled = taskq::ListOptions {
            state: Some(State::Cancelled),
            ..taskq::ListOptions::default()
        };
        let retried = queue.retry_matching(&cancelled).unwrap();
        assert_eq!(retried.retried.len(), 2, "{url}");
        let queued = taskq::ListOptions {
            state: Some(State::Queued),
            ..taskq::ListOptions::default()
        };
        assert_eq!(queue.delete_matching(&queued).unwrap().len(), 2);
        let row = taskq::Throughput {
            minute: std::time::SystemTime::now(),
            action: "m".into(),
            completed: 3,
            retried: 0,
            failed: 1,
        };
        queue.record_throughput(vec![row]).unwrap();
        let history = queue
            .throughput(std::time::Duration::from_secs(60))
            .unwrap();
        assert_eq!((history.len(), history[0].completed), (1, 3), "{url}");
    }
}

#[test]
fn every_blocking_call_works_on_both_backends() {
    for (url, _dir) in urls() {
        let queue = Queue::connect(&url).unwrap();
        let id = queue.enqueue("a", &1).unwrap();
        let mut lease = queue.claim("a").unwrap().unwrap();
        assert_eq!(lease.id(), id, "{url}");
        lease.extend(Duration::from_secs(30)).unwrap();
        lease.fail("retry me").unwrap();
        assert_eq!(queue.stats().unwrap()[0].queued, 1, "{url}");
        queue.delete(id).unwrap();

        let ids = queue
            .enqueue_many(vec![
                NewTask::json("b", &1).unwrap(),
                NewTask::json("b", &2).unwrap(),
            ])
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect::<Vec<_>>();
        assert_eq!(queue.len("b").unwrap(), 2);
        let leases = queue.claim_many("b", 2).unwrap();
        let mut leases = leases.into_iter();
        let first = leases.next().unwrap();
        let follow_ups = first
            .complete_with(vec![NewTask::json("c", &"next").unwrap()])
            .unwrap();
        assert_eq!(
            queue.get(follow_ups[0].id).unwrap().unwrap().parent,
            Some(ids[0])
        );
        leases.next().unwrap().complete().unwrap();
        assert!(queue.get(ids[1]).unwrap().is_none(), "{url}: completed");

        let lease = queue.claim("c").unwrap().unwrap();
        lease.fail_permanently("no").unwrap();
        let failed = queue
            .list(&ListOptions {
                state: Some(State::Failed),
                ..ListOptions::default()
            })
            .unwrap();
        assert_eq!(failed.len(), 1);
        queue.retry(failed[0].id).unwrap();
        queue
            .claim("c")
            .unwrap()
            .unwrap()
            .snooze(Duration::ZERO)
            .unwrap();
        queue.claim("c").unwrap().unwrap().release().unwrap();
        assert_eq!(queue.requeue_expired().unwrap(), 0);
        assert_eq!(queue.purge(State::Failed, Duration::ZERO).unwrap(), 0);
        queue.migrate().unwrap();
        queue.flush().unwrap();
        assert!(!queue.is_empty("c").unwrap());
    }
}

#[test]
fn the_blocking_worker_runs_sync_handlers_and_survives_their_panics() {
    for (url, _dir) in urls() {
        let queue = Queue::connect(&url).unwrap();
        let boom = queue
            .enqueue_task(NewTask::json("sync", &"boom").unwrap().max_tries(1))
            .unwrap()
            .id;
        let fine = queue.enqueue("sync", &"fine").unwrap();
        let mut worker = Worker::new(&queue, WorkerConfig::default());
        worker
            .handle("sync", |word: String, _ctx: TaskContext| {
                std::thread::sleep(Duration::from_millis(10)); // blocking is fine here
                if word == "boom" {
                    panic!("sync handler exploded");
                }
                Ok::<_, String>(())
            })
            .unwrap();
        let metrics = worker.metrics();
        let stop = CancellationToken::new();
        let watcher = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                while metrics.snapshot().completed + metrics.snapshot().failed < 2
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                stop.cancel();
                metrics.snapshot()
            })
        };
        worker.run_until(stop).unwrap();
        let settled = watcher.join().unwrap();
        assert_eq!(
            (settled.completed, settled.failed, settled.panicked),
            (1, 1, 1),
            "{url}"
        );
        assert!(queue.get(fine).unwrap().is_none());
        let failed = queue.get(boom).unwrap().unwrap();
        assert_eq!(failed.state, State::Failed);
        assert!(failed.last_error.unwrap().contains("sync handler exploded"));
    }
}

#[test]
fn a_blocking_worker_is_woken_by_another_queues_enqueues() {
    for (url, _dir) in urls() {
        // It polls every 30 s: only a wake-up (the PostgreSQL listener on
        // the blocking runtime, SQLite's watch) starts a task within 10 s.
        let slow_poll = ConnectOptions {
            config: QueueConfig {
                poll_interval: Duration::from_secs(30),
                ..QueueConfig::default()
            },
            ..ConnectOptions::default()
        };
        let queue = Queue::connect_with(&url, slow_poll).unwrap();
        let producer = Queue::connect(&url).unwrap();
        let mut worker = Worker::new(&queue, WorkerConfig::default());
        let (ran, heard) = std::sync::mpsc::channel();
        worker
            .handle("hear", move |n: u32, _ctx: TaskContext| {
                let _ = ran.send(n);
                Ok::<_, String>(())
            })
            .unwrap();
        let stop = CancellationToken::new();
        let running = {
            let stop = stop.clone();
            std::thread::spawn(move || worker.run_until(stop))
        };
        // The worker listens once it waits; give it a moment to start.
        std::thread::sleep(Duration::from_millis(300));
        for n in 0..3 {
            producer.enqueue("hear", &n).unwrap();
            let got = heard.recv_timeout(Duration::from_secs(10));
            assert_eq!(got, Ok(n), "{url}: woken, not polled");
        }
        stop.cancel();
        running.join().unwrap().unwrap();
    }
}

#[test]
fn inside_an_async_runtime_every_constructor_refuses_without_panicking() {
    let list = urls();
    let outside = Queue::connect(&list[0].0).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for (url, _dir) in &list {
            assert!(is_runtime_refusal(Queue::connect(url)), "{url}");
            assert!(
                is_runtime_refusal(Queue::connect_with(url, ConnectOptions::default())),
                "{url}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(is_runtime_refusal(Queue::open_sqlite(
            dir.path().join("x.db")
        )));
        let async_queue = taskq::Queue::open_sqlite(dir.path().join("y.db"))
            .await
            .unwrap();
        assert!(is_runtime_refusal(Queue::new(async_queue)));
        assert!(is_runtime_refusal(outside.len("a")));
        // A blocking queue dropped inside a runtime does not panic either.
        drop(outside);
    });
}
