//! Cancellation: of tasks that have not started, and of running ones,
//! whose handlers hear it.

use std::time::Duration;

use taskq::worker::{Outcome, StopReason, TaskContext, Worker};
use taskq::{CancelOutcome, Error, FailOutcome, NewTask, State};
use tokio::sync::mpsc;

use super::worker::{config, receive, start, until};
use super::{outlive_short_lease, TestDb, SHORT_LEASE};

pub async fn tasks_that_have_not_started_end_cancelled_at_once(db: &dyn TestDb) {
    let queue = db.queue().await;
    let queued = queue.enqueue("a", &1).await.unwrap();
    assert_eq!(
        queue.cancel(queued).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let task = queue.get(queued).await.unwrap().unwrap();
    assert_eq!(task.state, State::Cancelled);
    assert!(task.finished_at.is_some() && task.last_error.is_some());
    // A snoozed one, waiting for its time.
    let snoozed = queue.enqueue("a", &2).await.unwrap();
    queue
        .claim("a")
        .await
        .unwrap()
        .unwrap()
        .snooze(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        queue.cancel(snoozed).await.unwrap(),
        CancelOutcome::Cancelled
    );
    // By key, and in bulk.
    let keyed = queue
        .enqueue_task(NewTask::json("a", &3).unwrap().unique_key("k"))
        .await
        .unwrap()
        .id;
    assert_eq!(
        queue.cancel_key("a", "k").await.unwrap(),
        Some((keyed, CancelOutcome::Cancelled))
    );
    assert_eq!(
        queue.cancel_key("a", "k").await.unwrap(),
        None,
        "no live task holds it"
    );
    for n in 0..5 {
        queue.enqueue("bulk", &n).await.unwrap();
    }
    let done = queue.cancel_many("bulk", State::Queued).await.unwrap();
    assert_eq!((done.cancelled, done.requested), (5, 0));
    assert!(queue.claim("a").await.unwrap().is_none());
    assert!(queue.claim("bulk").await.unwrap().is_none());
    let stats = super::reported_stats(&queue).await;
    assert_eq!(stats.get(&("a".into(), State::Cancelled)), Some(&3));
    assert_eq!(stats.get(&("bulk".into(), State::Cancelled)), Some(&5));
    // Finished tasks are left alone; missing ones are an error.
    assert_eq!(
        queue.cancel(queued).await.unwrap(),
        CancelOutcome::AlreadyFinished(State::Cancelled)
    );
    assert!(matches!(
        queue.cancel(taskq::TaskId(999_999)).await,
        Err(Error::TaskNotFound { .. })
    ));
    assert!(matches!(
        queue.cancel_many("bulk", State::Failed).await,
        Err(Error::InvalidInput { .. })
    ));
    // Cancelled tasks can be retried, and purged.
    queue.retry(queued).await.unwrap();
    let lease = queue.claim("a").await.unwrap().expect("retried");
    assert_eq!((lease.id(), lease.task().tries), (queued, 1));
    assert!(lease.task().cancel_requested.is_none());
    lease.complete().await.unwrap();
    assert_eq!(
        queue.purge(State::Cancelled, Duration::ZERO).await.unwrap(),
        7
    );
}

pub async fn a_running_task_ends_cancelled_unless_it_completes(db: &dyn TestDb) {
    let queue = db.queue().await;
    for n in 0..4 {
        queue.enqueue("r", &n).await.unwrap();
    }
    let leases = queue.claim_many("r", 4).await.unwrap();
    for lease in &leases {
        assert_eq!(
            queue.cancel(lease.id()).await.unwrap(),
            CancelOutcome::Requested
        );
        assert!(queue
            .get(lease.id())
            .await
            .unwrap()
            .unwrap()
            .cancel_requested
            .is_some());
    }
    let mut leases = leases.into_iter();
    // A completion after the request stands: the work was done.
    let done = leases.next().unwrap();
    let done_id = done.id();
    done.complete().await.unwrap();
    assert!(queue.get(done_id).await.unwrap().is_none());
    // A failure with tries left ends cancelled, never retried.
    let failed = leases.next().unwrap();
    let failed_id = failed.id();
    assert_eq!(failed.fail("boom").await.unwrap(), FailOutcome::Cancelled);
    // A snooze or a release too.
    let snoozed = leases.next().unwrap();
    let snoozed_id = snoozed.id();
    snoozed.snooze(Duration::from_secs(1)).await.unwrap();
    let released = leases.next().unwrap();
    let released_id = released.id();
    released.release().await.unwrap();
    for id in [failed_id, snoozed_id, released_id] {
        let task = queue.get(id).await.unwrap().unwrap();
        assert_eq!(task.state, State::Cancelled, "task {id}");
        assert!(task.finished_at.is_some());
    }
    assert!(queue.claim("r").await.unwrap().is_none());
    // A lease that expires after the request ends cancelled too.
    let id = queue
        .enqueue_task(NewTask::json("r", &9).unwrap().timeout(SHORT_LEASE))
        .await
        .unwrap()
        .id;
    let lease = queue.claim("r").await.unwrap().unwrap();
    queue.cancel(id).await.unwrap();
    outlive_short_lease().await;
    assert_eq!(queue.requeue_expired().await.unwrap(), 1);
    assert_eq!(
        queue.get(id).await.unwrap().unwrap().state,
        State::Cancelled
    );
    assert!(matches!(
        lease.complete().await,
        Err(Error::LeaseLost { .. })
    ));
    // cancel_many asks every running task of the action.
    for n in 0..3 {
        queue.enqueue("m", &n).await.unwrap();
    }
    let held = queue.claim_many("m", 2).await.unwrap();
    let done = queue.cancel_many("m", State::Running).await.unwrap();
    assert_eq!((done.cancelled, done.requested), (0, 2));
    for lease in held {
        lease.fail("stopped").await.unwrap();
    }
    let stats = super::reported_stats(&queue).await;
    assert_eq!(stats.get(&("m".into(), State::Cancelled)), Some(&2));
    assert_eq!(stats.get(&("m".into(), State::Queued)), Some(&1));
}

pub async fn a_running_handler_hears_its_cancellation(db: &dyn TestDb) {
    let queue = db.queue().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(queue.clone(), config(2));
    worker
        .handle("long", move |mode: String, ctx: TaskContext| {
            let tx = tx.clone();
            async move {
                tx.send(("started", ctx.id(), None)).unwrap();
                ctx.cancelled().await;
                tx.send(("stopped", ctx.id(), ctx.stop_reason())).unwrap();
                match mode.as_str() {
                    "complete" => Ok(Outcome::complete()),
                    "cancel" => Ok(Outcome::cancel("stopped on request")),
                    _ => Err("interrupted".to_string()),
                }
            }
        })
        .unwrap();
    let running = start(worker);
    // Leases of a minute: heartbeats every 20 s, so only the request
    // itself can stop the handlers within the test.
    let long = |mode: &str| {
        NewTask::json("long", &mode)
            .unwrap()
            .timeout(Duration::from_secs(60))
    };
    let mut ids = Vec::new();
    for mode in ["complete", "fail"] {
        ids.push(queue.enqueue_task(long(mode)).await.unwrap().id);
    }
    receive(&mut rx, 2).await;
    for id in &ids {
        assert_eq!(queue.cancel(*id).await.unwrap(), CancelOutcome::Requested);
    }
    let stopped = receive(&mut rx, 2).await;
    assert!(stopped
        .iter()
        .all(|(what, _, reason)| *what == "stopped" && *reason == Some(StopReason::Cancelled)));
    let queue_for_check = queue.clone();
    let (completed, failed) = (ids[0], ids[1]);
    until("the results to be recorded", async || {
        let gone = queue_for_check.get(completed).await.unwrap().is_none();
        let failed = queue_for_check.get(failed).await.unwrap().unwrap();
        gone && failed.state == State::Cancelled
    })
    .await;
    let last = queue.get(failed).await.unwrap().unwrap();
    assert_eq!(last.last_error.as_deref(), Some("interrupted"));
    assert_eq!(last.tries, 1, "never retried");
    let id = queue.enqueue_task(long("cancel")).await.unwrap().id;
    receive(&mut rx, 1).await;
    queue.cancel(id).await.unwrap();
    receive(&mut rx, 1).await;
    let check = queue.clone();
    until("the handler's cancel to be recorded", async || {
        check.get(id).await.unwrap().unwrap().state == State::Cancelled
    })
    .await;
    let metrics = running.stop().await;
    assert_eq!((metrics.completed, metrics.cancelled), (1, 2));
}

pub async fn a_handler_in_another_queue_hears_it_within_a_heartbeat(db: &dyn TestDb) {
    let queue = db.queue().await;
    let canceller = db.queue().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(queue.clone(), config(1));
    worker
        .handle("far", move |_: u32, ctx: TaskContext| {
            let tx = tx.clone();
            async move {
                tx.send(ctx.stop_reason()).unwrap();
                ctx.cancelled().await;
                tx.send(ctx.stop_reason()).unwrap();
                Err::<Outcome, _>("stopped")
            }
        })
        .unwrap();
    let running = start(worker);
    // A lease of 900 ms: a heartbeat every 300 ms.
    let task = NewTask::json("far", &1)
        .unwrap()
        .timeout(Duration::from_millis(900));
    let id = queue.enqueue_task(task).await.unwrap().id;
    assert_eq!(receive(&mut rx, 1).await, [None]);
    let asked = std::time::Instant::now();
    assert_eq!(
        canceller.cancel(id).await.unwrap(),
        CancelOutcome::Requested
    );
    assert_eq!(receive(&mut rx, 1).await, [Some(StopReason::Cancelled)]);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let check = queue.clone();
    until("the task to end cancelled", async || {
        check.get(id).await.unwrap().unwrap().state == State::Cancelled
    })
    .await;
    running.stop().await;
}
