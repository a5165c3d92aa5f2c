//! Counting, inspecting and administering tasks.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use taskq::{
    EnqueueOptions, Error, ListOptions, NewTask, Order, Queue, QueueConfig, State, TaskId,
};

use super::{claim_and_complete, no_backoff, outlive_short_lease, TestDb, SHORT_LEASE};

pub async fn len_counts_only_ready_tasks(db: &dyn TestDb) {
    let queue = db.queue().await;
    for i in 0..5 {
        queue.enqueue("a", &i).await.unwrap();
    }
    queue
        .enqueue_task(
            NewTask::json("a", &9)
                .unwrap()
                .delay(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    queue.enqueue("b", &1).await.unwrap();
    assert_eq!(
        queue.len("a").await.unwrap(),
        5,
        "the scheduled task is not ready"
    );
    let lease = queue.claim("a").await.unwrap().unwrap();
    assert_eq!(
        queue.len("a").await.unwrap(),
        4,
        "a leased task is not ready"
    );
    lease.fail_permanently("x").await.unwrap();
    assert_eq!(
        queue.len("a").await.unwrap(),
        4,
        "a failed task is not ready"
    );
    assert_eq!(queue.len("b").await.unwrap(), 1);
}

pub async fn stats_count_per_action_and_state(db: &dyn TestDb) {
    let queue = db.queue().await;
    for i in 0..4 {
        queue.enqueue("a", &i).await.unwrap();
    }
    queue.enqueue("b", &1).await.unwrap();
    let running = queue.claim("a").await.unwrap().unwrap();
    queue
        .claim("a")
        .await
        .unwrap()
        .unwrap()
        .fail_permanently("x")
        .await
        .unwrap();
    let stats = queue.stats().await.unwrap();
    assert_eq!(stats.len(), 2);
    let (a, b) = (&stats[0], &stats[1]);
    assert_eq!(a.action, "a", "sorted by action");
    assert_eq!((a.queued, a.running, a.failed, a.succeeded), (2, 1, 1, 0));
    assert_eq!(a.total(), 4);
    assert_eq!((b.action.as_str(), b.queued, b.total()), ("b", 1, 1));
    assert_eq!(a.get(State::Running), 1);
    drop(running);
}

pub async fn get_returns_every_field(db: &dyn TestDb) {
    let queue = db.queue().await;
    let at = SystemTime::now() + Duration::from_secs(30);
    let options = EnqueueOptions {
        max_tries: 4,
        timeout: Duration::from_secs(7),
        not_before: Some(taskq::NotBefore::At(at)),
        parent: Some(TaskId(12345)),
        priority: -3,
        unique: Some(taskq::Unique::key("every-field")),
        concurrency_key: Some("every-key".into()),
        depends_on: Vec::new(),
        run_if_dependencies_fail: true,
    };
    let id = queue.enqueue_with("a", &"x", options).await.unwrap();
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(task.id, id);
    assert_eq!(task.action, "a");
    assert_eq!(task.payload, b"\"x\"");
    assert_eq!(task.state, State::Queued);
    assert_eq!((task.tries, task.max_tries), (0, 4));
    assert_eq!(task.timeout, Duration::from_secs(7));
    assert_eq!(task.concurrency_key.as_deref(), Some("every-key"));
    assert_eq!(task.parent, Some(TaskId(12345)));
    assert_eq!(
        (task.expires, task.finished_at, task.last_error),
        (None, None, None)
    );
    assert_eq!(task.lease_token, 0);
    assert!(task.created_at <= SystemTime::now());
    assert!(queue.get(TaskId(id.0 + 1000)).await.unwrap().is_none());
}

pub async fn list_filters_orders_and_pages(db: &dyn TestDb) {
    let queue = db.queue().await;
    let mut a_ids = Vec::new();
    for i in 0..7 {
        a_ids.push(queue.enqueue("a", &i).await.unwrap());
        queue.enqueue("b", &i).await.unwrap();
    }
    queue
        .claim("a")
        .await
        .unwrap()
        .unwrap()
        .fail_permanently("x")
        .await
        .unwrap();

    let page = |after, order, state| ListOptions {
        action: Some("a".to_string()),
        state,
        order,
        after,
        limit: 3,
        ..ListOptions::default()
    };
    let first = queue
        .list(&page(None, Order::OldestFirst, None))
        .await
        .unwrap();
    assert_eq!(first.iter().map(|t| t.id).collect::<Vec<_>>(), a_ids[..3]);
    let second = queue
        .list(&page(Some(first[2].id), Order::OldestFirst, None))
        .await
        .unwrap();
    assert_eq!(second.iter().map(|t| t.id).collect::<Vec<_>>(), a_ids[3..6]);
    let newest = queue
        .list(&page(None, Order::NewestFirst, None))
        .await
        .unwrap();
    assert_eq!(newest[0].id, a_ids[6]);
    assert!(newest.windows(2).all(|w| w[0].id > w[1].id));
    let failed = queue
        .list(&page(None, Order::OldestFirst, Some(State::Failed)))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, a_ids[0]);
    let everything = queue
        .list(&ListOptions {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(everything.len(), 14);
}

/// Many tasks in one state and few in the others, so that a backend that
/// reads a rare state through its index and a common one in id order
/// shows both ways: every page of every filter, in either order, holds
/// what the whole table says it should.
pub async fn list_pages_every_filter_in_either_order(db: &dyn TestDb) {
    let queue = db
        .queue_with(QueueConfig {
            retain_completed: true,
            ..QueueConfig::default()
        })
        .await;
    let batch = |action: &str, n: i32| {
        (0..n)
            .map(|i| NewTask::json(action, &i).unwrap())
            .collect::<Vec<_>>()
    };
    queue.enqueue_many(batch("a", 40)).await.unwrap();
    queue.enqueue_many(batch("b", 30)).await.unwrap();
    queue.enqueue_many(batch("a", 20)).await.unwrap();
    let mut held = Vec::new();
    for action in ["a", "b", "a", "a", "b"] {
        held.push(queue.claim(action).await.unwrap().unwrap());
    }
    for lease in held.drain(..2) {
        lease.fail_permanently("x").await.unwrap();
    }
    held.pop().unwrap().complete().await.unwrap();
    let all = queue
        .list(&ListOptions {
            limit: 1000,
            ..ListOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 90);
    let states = [
        None,
        Some(State::Queued),
        Some(State::Running),
        Some(State::Failed),
        Some(State::Succeeded),
    ];
    for action in [None, Some("a"), Some("b")] {
        for state in states {
            for order in [Order::OldestFirst, Order::NewestFirst] {
                let mut expected: Vec<TaskId> = all
                    .iter()
                    .filter(|t| action.is_none_or(|a| t.action == a))
                    .filter(|t| state.is_none_or(|s| t.state == s))
                    .map(|t| t.id)
                    .collect();
                if order == Order::NewestFirst {
                    expected.reverse();
                }
                let mut seen = Vec::new();
                let mut after = None;
                loop {
                    let page = queue
                        .list(&ListOptions {
                            action: action.map(str::to_owned),
                            state,
                            order,
                            after,
                            limit: 4,
                            ..ListOptions::default()
                        })
                        .await
                        .unwrap();
                    assert!(page.len() <= 4);
                    seen.extend(page.iter().map(|t| t.id));
                    match page.last() {
                        Some(last) if page.len() == 4 => after = Some(last.id),
                        _ => break,
                    }
                }
                assert_eq!(seen, expected, "{action:?} {state:?} {order:?}");
            }
        }
    }
    drop(held);
}

pub async fn retry_requeues_a_failed_task(db: &dyn TestDb) {
    let queue = db.queue_with(no_backoff()).await;
    let id = queue
        .enqueue_with(
            "a",
            &1,
            EnqueueOptions {
                max_tries: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    queue
        .claim("a")
        .await
        .unwrap()
        .unwrap()
        .fail("broken")
        .await
        .unwrap();
    assert_eq!(queue.get(id).await.unwrap().unwrap().state, State::Failed);
    queue.retry(id).await.unwrap();
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(
        (task.state, task.tries, task.finished_at),
        (State::Queued, 0, None)
    );
    assert_eq!(
        task.last_error.as_deref(),
        Some("broken"),
        "the last error is kept"
    );
    let lease = queue.claim("a").await.unwrap().expect("ready again");
    assert_eq!(lease.task().tries, 1);
    lease.complete().await.unwrap();
}

pub async fn retry_and_delete_report_what_is_wrong(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    let missing = TaskId(id.0 + 100);
    assert!(matches!(queue.retry(missing).await, Err(Error::TaskNotFound { id }) if id == missing));
    assert!(matches!(
        queue.retry(id).await,
        Err(Error::WrongState {
            actual: State::Queued,
            expected: State::Failed,
            ..
        })
    ));
    assert!(matches!(
        queue.delete(missing).await,
        Err(Error::TaskNotFound { .. })
    ));
    queue.delete(id).await.unwrap();
    assert!(queue.get(id).await.unwrap().is_none());
    assert!(matches!(
        queue.delete(id).await,
        Err(Error::TaskNotFound { .. })
    ));
}

pub async fn purge_removes_old_finished_tasks(db: &dyn TestDb) {
    let queue = db.queue().await;
    for i in 0..3 {
        queue.enqueue("a", &i).await.unwrap();
    }
    let kept = queue.enqueue("b", &0).await.unwrap();
    for _ in 0..2 {
        queue
            .claim("a")
            .await
            .unwrap()
            .unwrap()
            .fail_permanently("x")
            .await
            .unwrap();
    }
    assert_eq!(
        queue
            .purge(State::Failed, Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        queue
            .purge(State::Failed, Duration::from_millis(10))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        queue.purge(State::Succeeded, Duration::ZERO).await.unwrap(),
        0
    );
    assert!(queue.get(kept).await.unwrap().is_some());
    assert_eq!(
        queue.len("a").await.unwrap(),
        1,
        "queued tasks are never purged"
    );
    assert!(matches!(
        queue.purge(State::Queued, Duration::ZERO).await,
        Err(Error::InvalidInput { field: "state", .. })
    ));
}

/// Counts per (action, state) worked out from the tasks themselves.
async fn counted(queue: &Queue) -> BTreeMap<(String, State), u64> {
    let mut counts = BTreeMap::new();
    let mut after = None;
    loop {
        let page = queue
            .list(&ListOptions {
                after,
                ..ListOptions::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else {
            return counts;
        };
        after = Some(last.id);
        for task in &page {
            *counts.entry((task.action.clone(), task.state)).or_default() += 1;
        }
    }
}

/// Asserts that `stats` agrees with the tasks, after `step`.
async fn assert_stats_exact(queue: &Queue, step: &str) {
    let reported = super::reported_stats(queue).await;
    assert_eq!(reported, counted(queue).await, "stats after {step}");
}

/// An expired lease requeued, and its stale holder refused: `stats` stays
/// exact.
async fn stats_stay_exact_through_an_expiry(queue: &Queue) {
    queue
        .enqueue_task(NewTask::json("c", &0).unwrap().timeout(SHORT_LEASE))
        .await
        .unwrap();
    let stale = queue.claim("c").await.unwrap().unwrap();
    outlive_short_lease().await;
    assert_eq!(
        queue.len("c").await.unwrap(),
        1,
        "an expired lease is ready"
    );
    assert_eq!(queue.requeue_expired().await.unwrap(), 1);
    assert_stats_exact(queue, "an expiry").await;
    let _taken_over = queue.claim("c").await.unwrap().unwrap();
    assert!(stale.complete().await.is_err());
    assert_stats_exact(queue, "a refused stale completion").await;
}

pub async fn stats_stay_exact_through_every_transition(db: &dyn TestDb) {
    let queue = db
        .queue_with(QueueConfig {
            retain_completed: true,
            ..no_backoff()
        })
        .await;
    let deleting = db.queue_with(no_backoff()).await;
    let mut batch: Vec<NewTask> = (0..6).map(|i| NewTask::json("a", &i).unwrap()).collect();
    batch.push(NewTask::json("b", &0).unwrap());
    batch.push(
        NewTask::json("b", &1)
            .unwrap()
            .delay(Duration::from_secs(3600)),
    );
    queue.enqueue_many(batch).await.unwrap();
    assert_stats_exact(&queue, "a batch").await;
    assert_eq!(queue.len("b").await.unwrap(), 1, "the delayed task waits");

    let mut leases = queue.claim_many("a", 5).await.unwrap().into_iter();
    assert_stats_exact(&queue, "claims").await;
    leases.next().unwrap().complete().await.unwrap();
    assert_stats_exact(&queue, "a retained completion").await;
    let lease = leases.next().unwrap();
    let follow_up = NewTask::json("b", &2).unwrap();
    lease.complete_with(vec![follow_up]).await.unwrap();
    assert_stats_exact(&queue, "a completion with a follow-up").await;
    leases.next().unwrap().fail("again").await.unwrap();
    assert_stats_exact(&queue, "a failure with tries left").await;
    leases
        .next()
        .unwrap()
        .fail_permanently("never")
        .await
        .unwrap();
    assert_stats_exact(&queue, "a final failure").await;
    let mut lease = leases.next().unwrap();
    lease.extend(Duration::from_secs(60)).await.unwrap();
    assert_stats_exact(&queue, "an extension").await;
    lease.release().await.unwrap();
    assert_stats_exact(&queue, "a release").await;
    claim_and_complete(&deleting, "a").await;
    assert_stats_exact(&queue, "a deleting completion").await;

    stats_stay_exact_through_an_expiry(&queue).await;

    let failed = queue
        .list(&ListOptions {
            state: Some(State::Failed),
            ..ListOptions::default()
        })
        .await
        .unwrap();
    queue.retry(failed[0].id).await.unwrap();
    assert_stats_exact(&queue, "a retry").await;
    let queued = queue
        .list(&ListOptions {
            action: Some("a".into()),
            state: Some(State::Queued),
            ..ListOptions::default()
        })
        .await
        .unwrap();
    queue.delete(queued[0].id).await.unwrap();
    assert_stats_exact(&queue, "a delete").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        queue.purge(State::Succeeded, Duration::ZERO).await.unwrap(),
        2
    );
    assert_stats_exact(&queue, "a purge").await;
    assert_eq!(
        queue.len("a").await.unwrap(),
        counted(&queue).await[&("a".to_string(), State::Queued)],
        "every queued task of a is due"
    );
}
