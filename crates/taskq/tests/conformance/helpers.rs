//! The test helpers of `taskq::testing` on each backend: a worker's ready
//! tasks drained inline with what became of each, and the assertions on
//! what is enqueued.

use std::time::Duration;

use serde_json::json;
use taskq::testing::{self, Ended};
use taskq::worker::{Outcome, TaskContext, Worker, WorkerConfig};
use taskq::{NewTask, State, Task};

use super::{no_backoff, TestDb};

pub async fn drain_runs_every_ready_task_and_says_how_each_ended(db: &dyn TestDb) {
    let queue = db.queue_with(no_backoff()).await;
    let mut worker = Worker::new(queue.clone(), WorkerConfig::default());
    worker
        .handle("order", |n: u32, _ctx: TaskContext| async move {
            let ship = NewTask::json("ship", &n).map_err(|e| e.to_string())?;
            Ok::<_, String>(Outcome::follow_up(vec![ship]))
        })
        .unwrap()
        .handle("ship", |_: u32, ctx: TaskContext| async move {
            match ctx.tries() {
                1 => Err("the courier is late".to_owned()),
                _ => Ok(()),
            }
        })
        .unwrap()
        .handle("fragile", |word: String, _ctx: TaskContext| async move {
            if word == "boom" {
                panic!("cannot handle {word}");
            }
            Ok::<_, String>(())
        })
        .unwrap();
    let order = queue.enqueue("order", &7u32).await.unwrap();
    let boom = queue
        .enqueue_task(NewTask::json("fragile", &"boom").unwrap().max_tries(1))
        .await
        .unwrap()
        .id;
    let later = queue
        .enqueue_task(
            NewTask::json("fragile", &"later")
                .unwrap()
                .delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .id;
    let drained = testing::drain(&worker).await.unwrap();
    // The order, its follow-up twice (a retry due at once runs too), and
    // the panic; not the task waiting an hour.
    assert_eq!(drained.runs.len(), 4, "{drained:?}");
    assert_eq!(drained.ended(Ended::Completed), 2);
    assert_eq!(drained.ended(Ended::Retried), 1);
    assert_eq!(drained.ended(Ended::Failed), 1);
    let ship: Vec<_> = drained.of_action("ship").collect();
    assert_eq!(ship.len(), 2);
    assert_eq!(
        ship[0].task.parent,
        Some(order),
        "a follow-up names its parent"
    );
    assert_eq!((ship[0].ended, ship[0].task.tries), (Ended::Retried, 1));
    assert_eq!(ship[0].error.as_deref(), Some("the courier is late"));
    assert_eq!((ship[1].ended, ship[1].task.tries), (Ended::Completed, 2));
    let failed = drained.of_task(boom).next().unwrap();
    assert!(failed
        .error
        .as_deref()
        .unwrap()
        .contains("cannot handle boom"));
    assert!(drained.of_task(later).next().is_none());
    // What the database holds agrees.
    assert_eq!(queue.get(boom).await.unwrap().unwrap().state, State::Failed);
    assert_eq!(
        queue.get(later).await.unwrap().unwrap().state,
        State::Queued
    );
    assert_eq!(queue.len("ship").await.unwrap(), 0);
    // Nothing more is ready.
    assert!(testing::drain(&worker).await.unwrap().runs.is_empty());
}

pub async fn drain_gives_up_on_a_task_that_never_ends(db: &dyn TestDb) {
    let queue = db.queue().await;
    let mut worker = Worker::new(queue.clone(), WorkerConfig::default());
    worker
        .handle("again", |n: u32, _ctx: TaskContext| async move {
            let next = NewTask::json("again", &(n + 1)).map_err(|e| e.to_string())?;
            Ok::<_, String>(Outcome::follow_up(vec![next]))
        })
        .unwrap();
    queue.enqueue("again", &0u32).await.unwrap();
    let error = testing::drain_at_most(&worker, 5).await.unwrap_err();
    assert!(
        matches!(error, taskq::Error::InvalidInput { field: "drain", .. }),
        "{error}"
    );
    // The sixth was given back, its try not counted.
    let left = testing::enqueued(&queue, "again").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].tries, left[0].payload.as_slice()),
        (0, b"5".as_slice())
    );
}

pub async fn assertions_match_payload_fields_or_any_test(db: &dyn TestDb) {
    let queue = db.queue().await;
    let welcome = json!({"to": "ada@example.com", "kind": "welcome", "meta": {"lang": "en"}});
    let id = queue.enqueue("email", &welcome).await.unwrap();
    queue
        .enqueue_task(
            NewTask::json("email", &json!({"to": "bob@example.com"}))
                .unwrap()
                .priority(-3),
        )
        .await
        .unwrap();
    queue
        .enqueue("sms", &json!({"to": "ada@example.com"}))
        .await
        .unwrap();
    let found = testing::assert_enqueued(&queue, "email", json!({"to": "ada@example.com"})).await;
    assert_eq!(found.id, id);
    testing::assert_enqueued(&queue, "email", json!({"meta": {"lang": "en"}})).await;
    testing::assert_enqueued(&queue, "email", |task: &Task| task.priority == -3).await;
    testing::assert_not_enqueued(&queue, "email", json!({"to": "cy@example.com"})).await;
    testing::assert_not_enqueued(&queue, "push", json!({})).await;
    assert_eq!(testing::enqueued(&queue, "email").await.unwrap().len(), 2);
    // A running task is no longer enqueued.
    let lease = queue.claim("sms").await.unwrap().unwrap();
    testing::assert_not_enqueued(&queue, "sms", json!({})).await;
    lease.complete().await.unwrap();
    // A failed assertion panics and lists what is queued.
    let q = queue.clone();
    let missing = tokio::spawn(async move {
        testing::assert_enqueued(&q, "email", json!({"to": "cy@example.com"})).await;
    })
    .await
    .unwrap_err();
    let said = panic_text(missing);
    assert!(
        said.contains("cy@example.com") && said.contains("bob@example.com"),
        "{said}"
    );
    let q = queue.clone();
    let present = tokio::spawn(async move {
        testing::assert_not_enqueued(&q, "email", json!({"kind": "welcome"})).await;
    })
    .await
    .unwrap_err();
    assert!(panic_text(present).contains(&format!("task {id}")));
}

fn panic_text(error: tokio::task::JoinError) -> String {
    let payload = error.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
