//! Leases: expiry, takeover, and stale workers being refused.

use std::time::{Duration, SystemTime};

use taskq::backend::FailTo;
use taskq::{Error, NewTask, State};

use super::{outlive_short_lease, TestDb, SHORT_LEASE};

fn short(action: &str, max_tries: i32) -> NewTask {
    NewTask::json(action, &0)
        .unwrap()
        .timeout(SHORT_LEASE)
        .max_tries(max_tries)
}

fn is_lease_lost<T: std::fmt::Debug>(
    result: Result<T, Error>,
    id: taskq::TaskId,
    token: i64,
) -> bool {
    matches!(result, Err(Error::LeaseLost { id: i, token: t }) if i == id && t == token)
}

pub async fn expired_lease_is_claimed_again(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue_task(short("a", 5)).await.unwrap().id;
    let first = queue.claim("a").await.unwrap().unwrap();
    assert!(
        queue.claim("a").await.unwrap().is_none(),
        "held while the lease is valid"
    );
    outlive_short_lease().await;
    assert_eq!(
        queue.len("a").await.unwrap(),
        1,
        "an expired lease counts as ready"
    );
    let second = queue
        .claim("a")
        .await
        .unwrap()
        .expect("claimable after expiry");
    assert_eq!(second.id(), id);
    assert_eq!(second.task().tries, 2);
    assert!(second.token() > first.token());
    assert!(second
        .task()
        .last_error
        .as_deref()
        .unwrap()
        .contains("expired"));
    second.complete().await.unwrap();
    drop(first);
}

pub async fn stale_worker_is_refused_everything(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue_task(short("a", 5)).await.unwrap().id;
    let mut stale = queue.claim("a").await.unwrap().unwrap();
    let token = stale.token();
    outlive_short_lease().await;
    let fresh = queue.claim("a").await.unwrap().unwrap();

    assert!(is_lease_lost(
        stale.extend(Duration::from_secs(60)).await,
        id,
        token
    ));
    // The other calls, made by other stale workers with the same token.
    let old = stale.lease_ref();
    let backend = queue.backend();
    assert!(is_lease_lost(
        backend.task_fail(old, "late", FailTo::Fail).await,
        id,
        token
    ));
    let retry = FailTo::Retry(Duration::ZERO);
    assert!(is_lease_lost(
        backend.task_fail(old, "late", retry).await,
        id,
        token
    ));
    assert!(is_lease_lost(
        backend.task_release(old, Duration::ZERO).await,
        id,
        token
    ));
    assert!(is_lease_lost(
        backend.task_complete(old, Vec::new(), true, None).await,
        id,
        token
    ));
    assert!(is_lease_lost(stale.complete().await, id, token));

    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(
        (task.state, task.tries, task.lease_token),
        (State::Running, 2, fresh.token())
    );
    assert_eq!(
        task.expires,
        Some(fresh.expires()),
        "the refused calls changed nothing"
    );
    assert_eq!(
        task.last_error.as_deref().map(|e| e.contains("expired")),
        Some(true)
    );
    fresh.complete().await.unwrap();
    assert!(queue.get(id).await.unwrap().is_none());
}

pub async fn stale_completion_creates_no_follow_ups(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue_task(short("a", 5)).await.unwrap().id;
    let stale = queue.claim("a").await.unwrap().unwrap();
    outlive_short_lease().await;
    let fresh = queue.claim("a").await.unwrap().unwrap();
    let result = stale
        .complete_with(vec![NewTask::json("next", &1).unwrap()])
        .await;
    assert!(matches!(result, Err(Error::LeaseLost { .. })));
    assert_eq!(
        queue.len("next").await.unwrap(),
        0,
        "no follow-up from a refused completion"
    );
    let ids = fresh
        .complete_with(vec![NewTask::json("next", &1).unwrap()])
        .await
        .unwrap();
    let next = queue.get(ids[0].id).await.unwrap().unwrap();
    assert_eq!(next.parent, Some(id));
    assert_eq!(queue.len("next").await.unwrap(), 1, "exactly one follow-up");
}

pub async fn expiry_on_last_try_fails_the_task(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue_task(short("a", 1)).await.unwrap().id;
    let _lease = queue.claim("a").await.unwrap().unwrap();
    outlive_short_lease().await;
    assert!(queue.claim("a").await.unwrap().is_none(), "no tries left");
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(task.state, State::Failed);
    assert!(task.last_error.unwrap().contains("expired"));
    assert!(task.finished_at.is_some() && task.expires.is_none());
}

pub async fn requeue_expired_counts_what_it_moved(db: &dyn TestDb) {
    let queue = db.queue().await;
    let retry = queue.enqueue_task(short("a", 5)).await.unwrap().id;
    let last = queue.enqueue_task(short("b", 1)).await.unwrap().id;
    queue
        .enqueue_task(NewTask::json("c", &0).unwrap())
        .await
        .unwrap();
    let _a = queue.claim("a").await.unwrap().unwrap();
    let _b = queue.claim("b").await.unwrap().unwrap();
    let _c = queue.claim("c").await.unwrap().unwrap();
    assert_eq!(
        queue.requeue_expired().await.unwrap(),
        0,
        "nothing expired yet"
    );
    outlive_short_lease().await;
    assert_eq!(queue.requeue_expired().await.unwrap(), 2);
    assert_eq!(queue.requeue_expired().await.unwrap(), 0);
    assert_eq!(
        queue.get(retry).await.unwrap().unwrap().state,
        State::Queued
    );
    assert_eq!(queue.get(last).await.unwrap().unwrap().state, State::Failed);
    let stats = queue.stats().await.unwrap();
    let c = stats.iter().find(|s| s.action == "c").unwrap();
    assert_eq!(c.running, 1, "a valid lease is untouched");
}

pub async fn extend_keeps_the_task(db: &dyn TestDb) {
    let queue = db.queue().await;
    queue.enqueue_task(short("a", 5)).await.unwrap();
    let mut lease = queue.claim("a").await.unwrap().unwrap();
    let first_end = lease.expires();
    for _ in 0..3 {
        tokio::time::sleep(SHORT_LEASE / 3).await;
        let end = lease.extend(SHORT_LEASE).await.unwrap();
        assert_eq!(end, lease.expires());
    }
    assert!(lease.expires() > first_end);
    assert!(SystemTime::now() > first_end, "past the original lease end");
    assert!(
        queue.claim("a").await.unwrap().is_none(),
        "the extended lease still holds"
    );
    lease.complete().await.unwrap();
}

pub async fn deleted_task_loses_its_lease(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    let lease = queue.claim("a").await.unwrap().unwrap();
    queue.delete(id).await.unwrap();
    assert!(matches!(
        lease.complete().await,
        Err(Error::LeaseLost { .. })
    ));
}

pub async fn repeated_expiry_backs_off(db: &dyn TestDb) {
    let config = taskq::QueueConfig {
        backoff: taskq::Backoff {
            initial: Duration::from_millis(400),
            max: Duration::from_secs(60),
            jitter: 0.0,
        },
        ..taskq::QueueConfig::default()
    };
    let queue = db.queue_with(config).await;
    let id = queue
        .enqueue_task(short("crashy", taskq::FOREVER))
        .await
        .unwrap()
        .id;
    // Its first worker dies: the task is claimable again at once.
    drop(queue.claim("crashy").await.unwrap().unwrap());
    outlive_short_lease().await;
    let second = queue
        .claim("crashy")
        .await
        .unwrap()
        .expect("at once after a first try");
    assert_eq!(second.task().tries, 2);
    // Its second worker dies too: now it waits, like a failed try.
    drop(second);
    outlive_short_lease().await;
    assert_eq!(queue.requeue_expired().await.unwrap(), 1);
    assert!(
        queue.claim("crashy").await.unwrap().is_none(),
        "backing off"
    );
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(task.state, State::Queued);
    assert!(
        task.not_before > SystemTime::now(),
        "scheduled after the backoff"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    let third = queue
        .claim("crashy")
        .await
        .unwrap()
        .expect("due after the backoff");
    assert_eq!(third.task().tries, 3);
}

pub async fn len_leaves_out_a_lease_that_expired_on_its_last_try(db: &dyn TestDb) {
    let queue = db.queue().await;
    let last = queue.enqueue_task(short("a", 1)).await.unwrap().id;
    let more = queue.enqueue_task(short("a", 2)).await.unwrap().id;
    let forever = queue
        .enqueue_task(short("a", taskq::FOREVER))
        .await
        .unwrap()
        .id;
    let leases = queue.claim_many("a", 3).await.unwrap();
    assert_eq!(leases.len(), 3);
    outlive_short_lease().await;
    assert_eq!(
        queue.len("a").await.unwrap(),
        2,
        "the task on its last try is not claimable, the other two are"
    );
    let claimed: Vec<_> = queue
        .claim_many("a", 3)
        .await
        .unwrap()
        .iter()
        .map(|lease| lease.id())
        .collect();
    assert_eq!(claimed, vec![more, forever], "len said what a claim takes");
    assert_eq!(queue.get(last).await.unwrap().unwrap().state, State::Failed);
    drop(leases);
}
