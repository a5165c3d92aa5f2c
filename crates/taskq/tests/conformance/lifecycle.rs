//! Enqueue, claim, complete, fail, release: the life of a task.

use std::time::{Duration, SystemTime};

use serde_json::json;
use taskq::{
    EnqueueOptions, Error, FailOutcome, LeaseRef, NewTask, QueueConfig, State, TaskId, FOREVER,
};

use super::{claim_after_enqueue, claim_and_complete, no_backoff, TestDb};

pub async fn enqueue_then_claim_gives_the_task(db: &dyn TestDb) {
    let queue = db.queue().await;
    let before = SystemTime::now() - Duration::from_secs(1);
    let id = queue.enqueue("email", &json!({"to": "ada"})).await.unwrap();
    let lease = queue.claim("email").await.unwrap().expect("a task");
    let task = lease.task();
    assert_eq!(task.id, id);
    assert_eq!(task.action, "email");
    assert_eq!(
        lease.payload_json::<serde_json::Value>().unwrap(),
        json!({"to": "ada"})
    );
    assert_eq!(task.state, State::Running);
    assert_eq!(task.tries, 1);
    assert_eq!(task.max_tries, 10);
    assert_eq!(task.timeout, Duration::from_secs(120));
    assert_eq!(task.parent, None);
    assert!(task.created_at >= before && task.not_before >= before);
    let lease_left = lease.expires().duration_since(SystemTime::now()).unwrap();
    assert!(lease_left > Duration::from_secs(100) && lease_left <= Duration::from_secs(121));
    assert!(lease.token() > 0);
    assert!(
        queue.claim("email").await.unwrap().is_none(),
        "the lease is exclusive"
    );
    lease.complete().await.unwrap();
}

pub async fn empty_queue_claims_none(db: &dyn TestDb) {
    let queue = db.queue().await;
    assert!(queue.claim("nothing").await.unwrap().is_none());
    assert!(queue.claim_many("nothing", 10).await.unwrap().is_empty());
    assert_eq!(queue.len("nothing").await.unwrap(), 0);
    assert!(queue.is_empty("nothing").await.unwrap());
}

pub async fn claims_oldest_first_by_not_before_then_id(db: &dyn TestDb) {
    let queue = db.queue().await;
    let now = SystemTime::now();
    let third = queue.enqueue("a", &3).await.unwrap();
    let first = queue
        .enqueue_task(
            NewTask::json("a", &1)
                .unwrap()
                .run_at(now - Duration::from_secs(60)),
        )
        .await
        .unwrap()
        .id;
    let second = queue
        .enqueue_task(
            NewTask::json("a", &2)
                .unwrap()
                .run_at(now - Duration::from_secs(30)),
        )
        .await
        .unwrap()
        .id;
    let fourth = queue.enqueue("a", &4).await.unwrap();
    let mut order = Vec::new();
    while let Some(lease) = queue.claim("a").await.unwrap() {
        order.push(lease.id());
        lease.complete().await.unwrap();
    }
    assert_eq!(order, vec![first, second, third, fourth]);
}

pub async fn future_tasks_wait_for_their_time(db: &dyn TestDb) {
    let queue = db.queue().await;
    queue
        .enqueue_task(
            NewTask::json("later", &1)
                .unwrap()
                .delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let at = SystemTime::now() + Duration::from_secs(3600);
    let scheduled = queue
        .enqueue_task(NewTask::json("later", &2).unwrap().run_at(at))
        .await
        .unwrap()
        .id;
    assert!(queue.claim("later").await.unwrap().is_none());
    assert_eq!(queue.len("later").await.unwrap(), 0);
    let task = queue.get(scheduled).await.unwrap().unwrap();
    let drift = task
        .not_before
        .duration_since(at)
        .unwrap_or_else(|e| e.duration());
    assert!(
        drift < Duration::from_millis(1),
        "run_at is stored as given"
    );

    let soon = queue
        .enqueue_task(
            NewTask::json("later", &3)
                .unwrap()
                .delay(Duration::from_millis(200)),
        )
        .await
        .unwrap()
        .id;
    assert!(queue.claim("later").await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let lease = queue.claim("later").await.unwrap().expect("due now");
    assert_eq!(lease.id(), soon);
}

pub async fn actions_are_separate_queues(db: &dyn TestDb) {
    let queue = db.queue().await;
    let a = queue.enqueue("a", &1).await.unwrap();
    let b = queue.enqueue("b", &2).await.unwrap();
    assert_eq!(queue.claim("b").await.unwrap().unwrap().id(), b);
    assert_eq!(queue.claim("a").await.unwrap().unwrap().id(), a);
    assert!(queue.claim("c").await.unwrap().is_none());
}

pub async fn complete_removes_the_task(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    claim_and_complete(&queue, "a").await;
    assert_eq!(queue.get(id).await.unwrap(), None);
    assert!(queue.stats().await.unwrap().is_empty());
}

pub async fn retained_completion_keeps_a_succeeded_row(db: &dyn TestDb) {
    let queue = db
        .queue_with(QueueConfig {
            retain_completed: true,
            ..QueueConfig::default()
        })
        .await;
    let id = queue.enqueue("a", &1).await.unwrap();
    claim_and_complete(&queue, "a").await;
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(task.state, State::Succeeded);
    assert!(task.finished_at.is_some() && task.expires.is_none());
    assert!(queue.claim("a").await.unwrap().is_none());
}

pub async fn follow_ups_record_their_parent(db: &dyn TestDb) {
    let queue = db.queue().await;
    let parent = queue.enqueue("order", &1).await.unwrap();
    let lease = queue.claim("order").await.unwrap().unwrap();
    let ids = lease
        .complete_with(vec![
            NewTask::json("ship", &1).unwrap(),
            NewTask::json("invoice", &1).unwrap().max_tries(3),
        ])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let ship = queue.claim("ship").await.unwrap().unwrap();
    assert_eq!(ship.id(), ids[0].id);
    assert_eq!(ship.task().parent, Some(parent));
    let invoice = queue.get(ids[1].id).await.unwrap().unwrap();
    assert_eq!((invoice.parent, invoice.max_tries), (Some(parent), 3));
}

pub async fn fail_with_tries_left_backs_off(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    let lease = queue.claim("a").await.unwrap().unwrap();
    let before = SystemTime::now();
    let outcome = lease.fail("boom").await.unwrap();
    let FailOutcome::Retrying { after } = outcome else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert!(after >= Duration::from_millis(750) && after <= Duration::from_secs(1));
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(task.state, State::Queued);
    assert_eq!(task.last_error.as_deref(), Some("boom"));
    assert_eq!(task.tries, 1);
    assert!(task.not_before >= before + Duration::from_millis(700));
    assert!(queue.claim("a").await.unwrap().is_none(), "backing off");

    let quick = db.queue_with(no_backoff()).await;
    let lease = quick.claim("a").await.unwrap();
    assert!(lease.is_none(), "the stored not-before still holds");
    tokio::time::sleep(after).await;
    let lease = quick
        .claim("a")
        .await
        .unwrap()
        .expect("due after the backoff");
    assert_eq!(lease.task().tries, 2);
}

pub async fn fail_on_last_try_fails_for_good(db: &dyn TestDb) {
    let queue = db.queue_with(no_backoff()).await;
    let id = queue
        .enqueue_with(
            "a",
            &1,
            EnqueueOptions {
                max_tries: 3,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for attempt in 1..=3 {
        let lease = queue.claim("a").await.unwrap().expect("tries left");
        assert_eq!(lease.task().tries, attempt);
        let outcome = lease.fail(format!("error {attempt}")).await.unwrap();
        if attempt < 3 {
            assert!(matches!(outcome, FailOutcome::Retrying { .. }));
        } else {
            assert_eq!(outcome, FailOutcome::Failed);
        }
    }
    assert!(queue.claim("a").await.unwrap().is_none());
    let task = queue.get(id).await.unwrap().expect("failed tasks are kept");
    assert_eq!(task.state, State::Failed);
    assert_eq!(task.tries, 3);
    assert_eq!(task.last_error.as_deref(), Some("error 3"));
    assert!(task.finished_at.is_some());
}

pub async fn fail_permanently_ignores_tries_left(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    let lease = queue.claim("a").await.unwrap().unwrap();
    lease.fail_permanently("bad request").await.unwrap();
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!((task.state, task.tries), (State::Failed, 1));
    assert_eq!(task.last_error.as_deref(), Some("bad request"));
}

pub async fn forever_never_fails(db: &dyn TestDb) {
    let queue = db.queue_with(no_backoff()).await;
    let id = queue
        .enqueue_task(NewTask::json("a", &1).unwrap().max_tries(FOREVER))
        .await
        .unwrap()
        .id;
    for _ in 0..25 {
        let lease = queue
            .claim("a")
            .await
            .unwrap()
            .expect("forever has tries left");
        assert!(matches!(
            lease.fail("again").await.unwrap(),
            FailOutcome::Retrying { .. }
        ));
    }
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(
        (task.state, task.tries, task.max_tries),
        (State::Queued, 25, FOREVER)
    );
}

pub async fn release_does_not_count_the_try(db: &dyn TestDb) {
    let queue = db.queue().await;
    let first = queue.enqueue("a", &1).await.unwrap();
    let second = queue.enqueue("a", &2).await.unwrap();
    let lease = queue.claim("a").await.unwrap().unwrap();
    assert_eq!(lease.id(), first);
    let token = lease.token();
    lease.release().await.unwrap();
    let again = queue.claim("a").await.unwrap().unwrap();
    assert_eq!(again.id(), first, "a released task keeps its place in line");
    assert_eq!(again.task().tries, 1, "the released try was not counted");
    assert!(again.token() > token, "every claim gets a new token");
    again.complete().await.unwrap();
    assert_eq!(queue.claim("a").await.unwrap().unwrap().id(), second);
}

pub async fn snooze_waits_without_counting(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    let lease = queue.claim("a").await.unwrap().unwrap();
    lease.snooze(Duration::from_millis(200)).await.unwrap();
    assert!(queue.claim("a").await.unwrap().is_none());
    assert_eq!(queue.get(id).await.unwrap().unwrap().state, State::Queued);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let lease = queue
        .claim("a")
        .await
        .unwrap()
        .expect("due after the snooze");
    assert_eq!(lease.task().tries, 1);
}

pub async fn raw_payloads_round_trip(db: &dyn TestDb) {
    let queue = db.queue().await;
    let bytes: Vec<u8> = (0..=255).collect();
    queue
        .enqueue_task(NewTask::raw("bin", bytes.clone()))
        .await
        .unwrap();
    queue
        .enqueue_task(NewTask::raw("bin", Vec::new()))
        .await
        .unwrap();
    let lease = queue.claim("bin").await.unwrap().unwrap();
    assert_eq!(lease.payload(), &bytes[..]);
    let lease = queue.claim("bin").await.unwrap().unwrap();
    assert!(lease.payload().is_empty());
}

pub async fn claim_many_takes_oldest_up_to_limit(db: &dyn TestDb) {
    let queue = db.queue().await;
    let tasks = (0..10).map(|i| NewTask::json("a", &i).unwrap()).collect();
    let ids = queue
        .enqueue_many(tasks)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect::<Vec<_>>();
    let leases = queue.claim_many("a", 4).await.unwrap();
    let claimed: Vec<TaskId> = leases.iter().map(|l| l.id()).collect();
    assert_eq!(claimed, ids[..4]);
    let rest = queue.claim_many("a", 100).await.unwrap();
    assert_eq!(rest.len(), 6);
    assert_eq!(rest[0].id(), ids[4]);
}

pub async fn batch_enqueue_is_all_or_nothing(db: &dyn TestDb) {
    let queue = db.queue().await;
    let ids = queue
        .enqueue_many((0..100).map(|i| NewTask::json("a", &i).unwrap()).collect())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect::<Vec<_>>();
    assert_eq!(ids.len(), 100);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow in order");
    let mut bad = (0..50)
        .map(|i| NewTask::json("b", &i).unwrap())
        .collect::<Vec<_>>();
    bad.push(NewTask::json("", &0).unwrap());
    assert!(queue.enqueue_many(bad).await.is_err());
    assert_eq!(
        queue.len("b").await.unwrap(),
        0,
        "nothing of a refused batch"
    );
    assert!(queue.enqueue_many(Vec::new()).await.unwrap().is_empty());
}

pub async fn migrate_is_idempotent(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    queue.migrate().await.unwrap();
    queue.migrate().await.unwrap();
    assert!(
        queue.get(id).await.unwrap().is_some(),
        "migrating keeps the data"
    );
}

pub async fn an_insert_is_claimed_at_once_only_when_nothing_older_is_ready(db: &dyn TestDb) {
    let queue = db.queue().await;
    let backend = queue.backend();
    let worker = taskq::WorkerId::this_process(Some("conformance".into()));
    let (id, claimed) = backend
        .task_insert_claimed(NewTask::json("direct", &1).unwrap(), &worker)
        .await
        .unwrap();
    let claimed = claimed.expect("nothing else was ready: claimed");
    assert_eq!(claimed.id, id.id);
    assert_eq!((claimed.state, claimed.tries), (State::Running, 1));
    let expires = claimed.expires.expect("a lease");
    assert!(
        expires > SystemTime::now() + Duration::from_secs(60),
        "the default 2 min lease"
    );
    assert_eq!(queue.len("direct").await.unwrap(), 0);
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats[0].queued, stats[0].running), (0, 1));

    // A task ready before it: the new one is only queued, behind it.
    let older = queue.enqueue("direct", &2).await.unwrap();
    let (queued, claimed_too) = backend
        .task_insert_claimed(NewTask::json("direct", &3).unwrap(), &worker)
        .await
        .unwrap();
    assert!(claimed_too.is_none());
    assert_eq!(
        queue.get(queued.id).await.unwrap().unwrap().state,
        State::Queued
    );
    assert_eq!(queue.claim("direct").await.unwrap().unwrap().id(), older);

    // The lease is a real one: fenced like any claim's.
    let lease = LeaseRef {
        id: id.id,
        token: claimed.lease_token,
    };
    let stale = LeaseRef {
        id: id.id,
        token: claimed.lease_token + 1,
    };
    assert!(matches!(
        backend.task_complete(stale, Vec::new(), false, None).await,
        Err(Error::LeaseLost { .. })
    ));
    backend
        .task_complete(lease, Vec::new(), false, None)
        .await
        .unwrap();
    assert!(queue.get(id.id).await.unwrap().is_none());
}

pub async fn claim_wait_wakes_on_enqueue(db: &dyn TestDb) {
    let slow_poll = QueueConfig {
        poll_interval: Duration::from_secs(30),
        ..QueueConfig::default()
    };
    let queue = db.queue_with(slow_poll).await;
    let nothing = queue
        .claim_wait("idle", Duration::from_millis(100))
        .await
        .unwrap();
    assert!(nothing.is_none(), "nothing arrives: None after the wait");

    let latency = claim_after_enqueue(&queue, &queue, "w", tokio::task::yield_now()).await;
    assert!(
        latency < Duration::from_secs(5),
        "woken, not polled: {latency:?}"
    );
}

pub async fn claim_wait_sees_other_producers(db: &dyn TestDb) {
    let producer = db.queue().await;
    let notify = producer.supports_notify();
    // Without notifications, a quick poll is what finds the task.
    let poll_interval = if notify {
        Duration::from_secs(30)
    } else {
        Duration::from_millis(100)
    };
    let worker = db
        .queue_with(QueueConfig {
            poll_interval,
            ..QueueConfig::default()
        })
        .await;
    let latency = claim_after_enqueue(
        &worker,
        &producer,
        "x",
        tokio::time::sleep(Duration::from_millis(200)),
    )
    .await;
    assert!(
        latency < Duration::from_secs(5),
        "found in time: {latency:?}"
    );
}
