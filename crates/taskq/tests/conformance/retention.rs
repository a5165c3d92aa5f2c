//! Retention: purges in batches, the longest finished first, several at
//! once taking each task once, and workers removing exactly the finished
//! tasks whose retention is over.

use std::time::Duration;

use taskq::worker::{CancellationToken, Retention, TaskContext, Worker, WorkerConfig};
use taskq::{Error, NewTask, Queue, QueueConfig, State, TaskId, MAX_PURGE_BATCH};

use super::worker::until;
use super::TestDb;

const HOUR: Duration = Duration::from_secs(3600);

/// Enqueues `n` tasks of `action` and cancels them all while queued.
async fn cancelled(queue: &Queue, action: &str, n: usize) -> Vec<TaskId> {
    let tasks = (0..n).map(|i| NewTask::json(action, &i).unwrap()).collect();
    let ids: Vec<TaskId> = queue
        .enqueue_many(tasks)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    queue.cancel_many(action, State::Queued).await.unwrap();
    ids
}

/// Claims the next task of `action` and fails it for good.
async fn failed(queue: &Queue, action: &str) -> TaskId {
    let id = queue.enqueue(action, &0).await.unwrap();
    let lease = queue.claim(action).await.unwrap().expect("the task");
    assert_eq!(lease.id(), id);
    lease.fail_permanently("broken").await.unwrap();
    id
}

async fn exists(queue: &Queue, id: TaskId) -> bool {
    queue.get(id).await.unwrap().is_some()
}

pub async fn purge_batches_take_the_longest_finished_first(db: &impl TestDb) {
    let queue = db.queue().await;
    let ids = cancelled(&queue, "a", 10).await;
    // Task i finished i hours ago.
    for (i, id) in ids.iter().enumerate().skip(1) {
        db.age_finished(&[*id], HOUR * i as u32).await;
    }
    let purge = |limit| queue.purge_batch(State::Cancelled, HOUR / 2, limit);
    assert_eq!(purge(3).await.unwrap(), 3);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(exists(&queue, *id).await, i < 7, "task {i} hours old");
    }
    // The other six that are due, three at a time; the newest stays.
    assert_eq!(purge(3).await.unwrap(), 3);
    assert_eq!(purge(3).await.unwrap(), 3);
    let mut left = Vec::new();
    for id in &ids {
        left.push(exists(&queue, *id).await);
    }
    let mut expected = [false; 10];
    expected[0] = true;
    assert_eq!(left, expected);
    assert_eq!(purge(MAX_PURGE_BATCH).await.unwrap(), 0);
    for limit in [0, MAX_PURGE_BATCH + 1] {
        assert!(matches!(
            purge(limit).await,
            Err(Error::InvalidInput { field: "limit", .. })
        ));
    }
    let running = queue.purge_batch(State::Running, HOUR, 10).await;
    assert!(matches!(
        running,
        Err(Error::InvalidInput { field: "state", .. })
    ));
}

pub async fn concurrent_purge_batches_remove_each_task_once(db: &impl TestDb) {
    const TASKS: usize = 1_200;
    let queue = db.queue().await;
    let ids = cancelled(&queue, "bulk", TASKS).await;
    db.age_finished(&ids, 2 * HOUR).await;
    let mut purgers = Vec::new();
    for _ in 0..4 {
        let queue = db.queue().await;
        purgers.push(tokio::spawn(async move {
            let mut removed = 0;
            loop {
                let n = queue
                    .purge_batch(State::Cancelled, HOUR, 100)
                    .await
                    .unwrap();
                removed += n;
                if n == 0 {
                    return removed;
                }
            }
        }));
    }
    let mut removed = 0;
    for purger in purgers {
        removed += purger.await.unwrap();
    }
    assert_eq!(removed, TASKS as u64, "each task removed once");
    assert!(queue.stats().await.unwrap().is_empty());
}

pub async fn workers_remove_exactly_the_finished_tasks_past_their_retention(db: &impl TestDb) {
    let queue = db
        .queue_with(QueueConfig {
            retain_completed: true,
            ..QueueConfig::default()
        })
        .await;
    let (old_failed, new_failed) = (failed(&queue, "f").await, failed(&queue, "f").await);
    let old_cancelled = cancelled(&queue, "c", 1).await[0];
    let (old_done, new_done) = (
        queue.enqueue("s", &0).await.unwrap(),
        queue.enqueue("s", &1).await.unwrap(),
    );
    for _ in 0..2 {
        queue
            .claim("s")
            .await
            .unwrap()
            .unwrap()
            .complete()
            .await
            .unwrap();
    }
    db.age_finished(&[old_failed, old_cancelled, old_done], 3 * HOUR)
        .await;
    let queued = queue.enqueue("waiting", &0).await.unwrap();
    db.age_finished(&[new_done], HOUR / 2).await;

    let retention = Retention {
        succeeded: Some(HOUR),
        failed: Some(2 * HOUR),
        cancelled: None,
        every: Duration::from_millis(50),
    };
    let config = WorkerConfig {
        retention,
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(queue.clone(), config);
    worker
        .handle("unused", |(): (), _ctx: TaskContext| async {
            Ok::<_, String>(())
        })
        .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run_until(stop.clone().cancelled_owned()));
    until(
        "the worker to remove the tasks past their retention",
        async || !exists(&queue, old_failed).await && !exists(&queue, old_done).await,
    )
    .await;
    // A few more rounds: nothing else goes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    running.await.unwrap().unwrap();
    for (id, what) in [
        (new_failed, "a failed task inside its retention"),
        (old_cancelled, "a cancelled task without retention"),
        (new_done, "a succeeded task inside its retention"),
        (queued, "a queued task"),
    ] {
        assert!(exists(&queue, id).await, "{what} stays");
    }
}
