//! The record of each try, and who holds a running task.

use std::time::Duration;

use taskq::worker::{Outcome, TaskContext, Worker, WorkerConfig};
use taskq::{AttemptOutcome, NewTask, QueueConfig, State, KEPT_ATTEMPTS};
use tokio::sync::mpsc;

use super::worker::{receive, start};
use super::{no_backoff, outlive_short_lease, TestDb, SHORT_LEASE};

pub async fn each_try_is_recorded_across_retries_and_expiries(db: &dyn TestDb) {
    let queue = db
        .queue_with(QueueConfig {
            retain_completed: true,
            ..no_backoff()
        })
        .await;
    let id = queue
        .enqueue_task(NewTask::json("a", &1).unwrap().timeout(SHORT_LEASE))
        .await
        .unwrap()
        .id;
    let lease = queue.claim("a").await.unwrap().unwrap();
    let claimed = lease.task().clone();
    assert!(claimed.started_at.is_some());
    let worker = claimed.worker.clone().expect("the claimer is recorded");
    assert_eq!(worker.pid, std::process::id());
    assert!(claimed.attempts.is_empty(), "recorded when a try ends");
    lease.fail("first").await.unwrap();
    let _expired = queue.claim("a").await.unwrap().unwrap();
    outlive_short_lease().await;
    queue.requeue_expired().await.unwrap();
    // The expiry's backoff after a second try: wait for it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lease = loop {
        if let Some(lease) = queue.claim("a").await.unwrap() {
            break lease;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    lease.snooze(Duration::ZERO).await.unwrap();
    queue
        .claim("a")
        .await
        .unwrap()
        .unwrap()
        .complete()
        .await
        .unwrap();
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(task.state, State::Succeeded);
    let seen: Vec<(i32, AttemptOutcome, Option<&str>)> = task
        .attempts
        .iter()
        .map(|a| (a.number, a.outcome, a.error.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, AttemptOutcome::Retried, Some("first")),
            (
                2,
                AttemptOutcome::Expired,
                Some("the lease expired before the task finished")
            ),
            (3, AttemptOutcome::Released, None),
            (3, AttemptOutcome::Succeeded, None),
        ]
    );
    for attempt in &task.attempts {
        let started = attempt.started_at.expect("a start");
        assert!(started <= attempt.ended_at);
        assert_eq!(attempt.worker.as_ref(), Some(&worker));
    }
}

pub async fn only_the_newest_attempts_are_kept(db: &dyn TestDb) {
    let queue = db.queue_with(no_backoff()).await;
    let id = queue
        .enqueue_task(NewTask::json("a", &1).unwrap().max_tries(taskq::FOREVER))
        .await
        .unwrap()
        .id;
    let tries = KEPT_ATTEMPTS as i32 + 5;
    for n in 1..=tries {
        let lease = queue.claim("a").await.unwrap().expect("ready again");
        lease.fail(format!("try {n}")).await.unwrap();
    }
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(task.attempts.len(), KEPT_ATTEMPTS);
    let numbers: Vec<i32> = task.attempts.iter().map(|a| a.number).collect();
    assert_eq!(
        numbers,
        (tries - KEPT_ATTEMPTS as i32 + 1..=tries).collect::<Vec<_>>()
    );
    let last = task.attempts.last().unwrap();
    assert_eq!(last.error.as_deref(), Some(format!("try {tries}").as_str()));
}

pub async fn a_running_task_shows_the_worker_that_holds_it(db: &dyn TestDb) {
    let queue = db.queue().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(
        queue.clone(),
        WorkerConfig {
            name: Some("mailer-1".into()),
            ..WorkerConfig::default()
        },
    );
    worker
        .handle("held", move |_: u32, ctx: TaskContext| {
            let tx = tx.clone();
            async move {
                tx.send(ctx.id()).unwrap();
                ctx.cancelled().await;
                Ok::<_, String>(Outcome::complete())
            }
        })
        .unwrap();
    let running = start(worker);
    queue.enqueue("held", &1).await.unwrap();
    let id = receive(&mut rx, 1).await[0];
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(task.state, State::Running);
    let holder = task.worker.expect("a holder");
    assert_eq!(holder.name.as_deref(), Some("mailer-1"));
    assert_eq!(holder.pid, std::process::id());
    assert!(!holder.host.is_empty());
    queue.cancel(id).await.unwrap();
    running.stop().await;
}
