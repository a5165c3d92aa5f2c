//! Limits: a concurrency limit across queues, slots given back by ended
//! and expired leases, a rate limit's bucket, a per-key limit that passes
//! over busy keys, and limits set, listed and cleared.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use taskq::worker::{CancellationToken, TaskContext, Worker, WorkerConfig};
use taskq::{Error, Lease, Limits, NewTask, Queue, Rate, MAX_LIMIT};

use super::{outlive_short_lease, TestDb, SHORT_LEASE};

async fn enqueue_n(queue: &Queue, action: &str, n: usize) {
    let tasks = (0..n).map(|i| NewTask::json(action, &i).unwrap()).collect();
    queue.enqueue_many(tasks).await.unwrap();
}

/// Claims as many as each queue gets, in turn, until none gets more.
async fn claim_all(queues: &[Queue], action: &str) -> Vec<Lease> {
    let mut leases = Vec::new();
    loop {
        let before = leases.len();
        for queue in queues {
            leases.extend(queue.claim_many(action, 10).await.unwrap());
        }
        if leases.len() == before {
            return leases;
        }
    }
}

pub async fn a_concurrency_limit_holds_across_queues(db: &impl TestDb) {
    let queues = [db.queue().await, db.queue().await, db.queue().await];
    enqueue_n(&queues[0], "a", 20).await;
    queues[1]
        .set_limits("a", Limits::new().concurrency(3))
        .await
        .unwrap();
    let mut leases = claim_all(&queues, "a").await;
    assert_eq!(leases.len(), 3, "three slots across every queue");
    let info = &queues[2].limits().await.unwrap()[0];
    assert_eq!((info.action.as_str(), info.running), ("a", 3));
    // Each way a task ends or is given back frees its slot.
    leases.pop().unwrap().complete().await.unwrap();
    leases.push(queues[2].claim("a").await.unwrap().expect("a freed slot"));
    assert!(queues[0].claim("a").await.unwrap().is_none());
    leases
        .pop()
        .unwrap()
        .fail_permanently("broken")
        .await
        .unwrap();
    leases.push(queues[0].claim("a").await.unwrap().expect("a freed slot"));
    leases.pop().unwrap().release().await.unwrap();
    leases.extend(queues[1].claim_many("a", 10).await.unwrap());
    assert_eq!(leases.len(), 3);
    // Raised at run time: two more.
    queues[0]
        .set_limits("a", Limits::new().concurrency(5))
        .await
        .unwrap();
    assert_eq!(queues[2].claim_many("a", 10).await.unwrap().len(), 2);
    // Lowered below what runs: nothing more until the running fall below.
    queues[0]
        .set_limits("a", Limits::new().concurrency(2))
        .await
        .unwrap();
    for lease in leases.drain(..2) {
        lease.complete().await.unwrap();
    }
    assert!(queues[1].claim("a").await.unwrap().is_none(), "3 still run");
    assert!(queues[1].clear_limits("a").await.unwrap());
    assert!(!queues[1].clear_limits("a").await.unwrap());
    assert_eq!(queues[2].claim_many("a", 100).await.unwrap().len(), 13);
}

pub async fn an_expired_lease_gives_its_slot_back(db: &impl TestDb) {
    let queue = db.queue().await;
    let task = |i: i32| NewTask::json("a", &i).unwrap().timeout(SHORT_LEASE);
    queue
        .enqueue_many((0..3).map(task).collect())
        .await
        .unwrap();
    queue
        .set_limits("a", Limits::new().concurrency(1))
        .await
        .unwrap();
    let dead = queue.claim("a").await.unwrap().expect("the first");
    assert!(queue.claim("a").await.unwrap().is_none());
    // The worker holding it died: its slot comes back with the lease end.
    outlive_short_lease().await;
    let next = queue.claim("a").await.unwrap().expect("the slot came back");
    // The expired task is first in line again, on its second try.
    assert_eq!((next.id(), next.task().tries), (dead.id(), 2));
    assert!(queue.claim("a").await.unwrap().is_none());
    assert!(matches!(
        dead.complete().await,
        Err(Error::LeaseLost { .. })
    ));
}

/// Checks a rate of `count` a second with a bucket of `count` against
/// the claim times of the database's own clock (what the bucket refills
/// by): no span from one claim to a later one holds more claims than a
/// full bucket and the tokens of the span. A test clock would pass over
/// a step of the machine's clock, which the database sees too.
fn assert_within_rate(mut claimed: Vec<SystemTime>, count: u32) {
    claimed.sort();
    let rate = f64::from(count);
    for (i, first) in claimed.iter().enumerate() {
        for (j, last) in claimed.iter().enumerate().skip(i) {
            let span = last.duration_since(*first).unwrap().as_secs_f64();
            let admits = (rate + rate * span + 1e-6).floor() as usize;
            assert!(
                j - i < admits,
                "{} claims in {span:.3} s; a bucket and the rate admit {admits}",
                j - i + 1
            );
        }
    }
}

fn started_at(lease: &Lease) -> SystemTime {
    lease.task().started_at.expect("a claimed task has started")
}

pub async fn a_rate_limit_admits_a_bucket_then_its_rate(db: &impl TestDb) {
    let queue = db.queue().await;
    enqueue_n(&queue, "a", 300).await;
    let rate = Rate::per_second(20);
    queue
        .set_limits("a", Limits::new().rate(rate))
        .await
        .unwrap();
    let info = &queue.limits().await.unwrap()[0];
    assert_eq!((info.limits.rate, info.tokens), (Some(rate), Some(20)));
    // A full bucket at once, then nothing until a token comes (one in
    // 50 ms, which a slow machine may take to ask again).
    let before = Instant::now();
    let mut held = queue.claim_many("a", 100).await.unwrap();
    assert_eq!(held.len(), 20);
    let next = queue.claim("a").await.unwrap();
    assert!(next.is_none() || before.elapsed() >= Duration::from_millis(50));
    held.extend(next);
    // A worker over five seconds: at most 100 more, and it keeps moving.
    let claimed = Arc::new(Mutex::new(held.iter().map(started_at).collect::<Vec<_>>()));
    let mut worker = Worker::new(queue.clone(), WorkerConfig::default());
    let ledger = Arc::clone(&claimed);
    worker
        .handle("a", move |_: i32, ctx: TaskContext| {
            let started = ctx.task().started_at.expect("a claimed task has started");
            ledger.lock().unwrap().push(started);
            async move { Ok::<_, String>(()) }
        })
        .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run_until(stop.clone().cancelled_owned()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.cancel();
    running.await.unwrap().unwrap();
    let claimed = claimed.lock().unwrap().clone();
    let ran = claimed.len() - held.len();
    assert!(ran >= 60, "only {ran} ran in 5 s at 20 a second");
    assert_within_rate(claimed, 20);
    for lease in held {
        lease.complete().await.unwrap();
    }
}

pub async fn a_busy_key_holds_back_only_its_own_tasks(db: &impl TestDb) {
    let queue = db.queue().await;
    let keyed = |key: &str, i: usize| NewTask::json("a", &i).unwrap().concurrency_key(key);
    // Fifty of one customer first, then five others, and one without key.
    let mut tasks: Vec<NewTask> = (0..50).map(|i| keyed("ada", i)).collect();
    tasks.extend(
        ["bob", "cy", "dee", "eve", "fay"]
            .iter()
            .map(|k| keyed(k, 0)),
    );
    tasks.push(NewTask::json("a", &0).unwrap());
    queue.enqueue_many(tasks).await.unwrap();
    queue
        .set_limits("a", Limits::new().per_key(1))
        .await
        .unwrap();
    let held = queue.claim("a").await.unwrap().expect("ada's first");
    assert_eq!(held.task().concurrency_key.as_deref(), Some("ada"));
    let others = queue.claim_many("a", 100).await.unwrap();
    let mut keys: Vec<Option<String>> = others
        .iter()
        .map(|l| l.task().concurrency_key.clone())
        .collect();
    keys.sort();
    let expected: Vec<Option<String>> = std::iter::once(None)
        .chain(["bob", "cy", "dee", "eve", "fay"].map(|k| Some(k.to_owned())))
        .collect();
    assert_eq!(keys, expected, "one of each other key, past ada's 49");
    assert_eq!(queue.limits().await.unwrap()[0].busy_keys, 6);
    held.complete().await.unwrap();
    let next = queue.claim_many("a", 100).await.unwrap();
    assert_eq!(next.len(), 1, "ada's second, alone");
    assert_eq!(next[0].task().concurrency_key.as_deref(), Some("ada"));
}

pub async fn a_per_key_limit_never_runs_two_of_a_key(db: &impl TestDb) {
    const KEYS: usize = 10;
    const EACH: usize = 1_000;
    let queue = db.queue().await;
    queue
        .set_limits("a", Limits::new().per_key(1))
        .await
        .unwrap();
    // Key by key, so that the tasks of one key stand together in line.
    for key in 0..KEYS {
        let tasks = (0..EACH)
            .map(|i| {
                NewTask::json("a", &i)
                    .unwrap()
                    .concurrency_key(format!("k{key}"))
            })
            .collect();
        queue.enqueue_many(tasks).await.unwrap();
    }
    let running: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let worst = Arc::new(AtomicUsize::new(0));
    let most_keys = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let config = WorkerConfig {
        concurrency: 8,
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(queue.clone(), config);
    let (r, w, m, d) = (
        Arc::clone(&running),
        Arc::clone(&worst),
        Arc::clone(&most_keys),
        Arc::clone(&done),
    );
    worker
        .handle("a", move |_: usize, ctx: TaskContext| {
            let (r, w, m, d) = (
                Arc::clone(&r),
                Arc::clone(&w),
                Arc::clone(&m),
                Arc::clone(&d),
            );
            let key = ctx.task().concurrency_key.clone().unwrap();
            async move {
                {
                    let mut running = r.lock().unwrap();
                    let n = running.entry(key.clone()).or_default();
                    *n += 1;
                    w.fetch_max(*n, Ordering::SeqCst);
                    let keys = running.values().filter(|n| **n > 0).count();
                    m.fetch_max(keys, Ordering::SeqCst);
                }
                tokio::task::yield_now().await;
                *r.lock().unwrap().get_mut(&key).unwrap() -= 1;
                d.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(())
            }
        })
        .unwrap();
    let stop = CancellationToken::new();
    let worker = tokio::spawn(worker.run_until(stop.clone().cancelled_owned()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while done.load(Ordering::SeqCst) < KEYS * EACH {
        assert!(Instant::now() < deadline, "the keyed tasks did not all run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    worker.await.unwrap().unwrap();
    assert_eq!(worst.load(Ordering::SeqCst), 1, "never two of one key");
    assert!(
        most_keys.load(Ordering::SeqCst) > 1,
        "the other keys ran beside a busy one"
    );
    assert_eq!(queue.len("a").await.unwrap(), 0);
}

pub async fn a_paused_limited_action_is_not_claimed(db: &impl TestDb) {
    let queue = db.queue().await;
    enqueue_n(&queue, "a", 3).await;
    queue
        .set_limits("a", Limits::new().concurrency(2))
        .await
        .unwrap();
    queue.pause("a").await.unwrap();
    assert!(queue.claim("a").await.unwrap().is_none());
    queue.resume("a").await.unwrap();
    assert_eq!(queue.claim_many("a", 10).await.unwrap().len(), 2);
}

pub async fn limits_are_set_listed_changed_and_refused_when_bad(db: &impl TestDb) {
    let queue = db.queue().await;
    assert!(queue.limits().await.unwrap().is_empty());
    let all = Limits::new()
        .concurrency(4)
        .rate(Rate::new(10, Duration::from_secs(60)))
        .per_key(2);
    queue.set_limits("b", all).await.unwrap();
    queue
        .set_limits("a", Limits::new().concurrency(1))
        .await
        .unwrap();
    let listed = queue.limits().await.unwrap();
    let actions: Vec<&str> = listed.iter().map(|l| l.action.as_str()).collect();
    assert_eq!(actions, ["a", "b"]);
    assert_eq!(listed[1].limits, all);
    assert_eq!((listed[1].running, listed[1].tokens), (0, Some(10)));
    assert_eq!((listed[0].tokens, listed[0].busy_keys), (None, 0));
    // Setting again replaces; empty limits remove.
    queue
        .set_limits("b", Limits::new().per_key(3))
        .await
        .unwrap();
    assert_eq!(
        queue.limits().await.unwrap()[1].limits,
        Limits::new().per_key(3)
    );
    queue.set_limits("a", Limits::new()).await.unwrap();
    assert_eq!(queue.limits().await.unwrap().len(), 1);
    for bad in [
        Limits::new().concurrency(0),
        Limits::new().per_key(MAX_LIMIT + 1),
        Limits::new().rate(Rate::new(5, Duration::ZERO)),
    ] {
        assert!(matches!(
            queue.set_limits("c", bad).await,
            Err(Error::InvalidInput { .. })
        ));
    }
    assert!(matches!(
        queue.set_limits("", Limits::new().concurrency(1)).await,
        Err(Error::InvalidInput {
            field: "action",
            ..
        })
    ));
    let long_key = NewTask::json("c", &1)
        .unwrap()
        .concurrency_key("k".repeat(taskq::MAX_CONCURRENCY_KEY_LEN + 1));
    assert!(matches!(
        queue.enqueue_task(long_key).await,
        Err(Error::InvalidInput {
            field: "concurrency_key",
            ..
        })
    ));
    let keyed = queue
        .enqueue_task(NewTask::json("c", &1).unwrap().concurrency_key("ada"))
        .await
        .unwrap();
    let stored = queue.get(keyed.id).await.unwrap().unwrap();
    assert_eq!(stored.concurrency_key.as_deref(), Some("ada"));
}
