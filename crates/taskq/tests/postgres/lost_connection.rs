//! A write whose connection is lost before its answer (here: its server
//! process killed with `pg_terminate_backend` while it waits for a row
//! lock) is tried once more on a fresh connection, and applied once: a
//! completion completes, a failure is recorded once, a release and a
//! heartbeat hold.

use std::future::Future;

use super::*;

/// Holds a lock on task `id` from a session of its own while `write`
/// runs, kills the server process of the write once it waits for that
/// lock, then lets the lock go; returns what the write returned.
async fn killed_while_waiting<T>(
    db: &PostgresDb,
    id: TaskId,
    write: impl Future<Output = T> + Send + 'static,
) -> T
where
    T: Send + 'static,
{
    let schema = &db.schema;
    let mut holder = raw_client().await;
    let lock = holder.transaction().await.unwrap();
    lock.execute(
        &format!("SELECT 1 FROM \"{schema}\".taskq_tasks WHERE id = $1 FOR UPDATE"),
        &[&id.0],
    )
    .await
    .unwrap();
    let write = tokio::spawn(write);
    let killer = raw_client().await;
    let pid = pid_waiting_for_a_lock(&killer, schema).await;
    let killed: bool = killer
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    // The repeat waits for the lock in its turn.
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock.rollback().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), write)
        .await
        .expect("the write finished")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_whose_connection_is_killed_is_applied_once() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    let lease = queue.claim("a").await.unwrap().unwrap();
    let completed = killed_while_waiting(&db, id, async move { lease.complete().await }).await;
    completed.expect("the completion was tried again and accepted");
    assert!(
        queue.get(id).await.unwrap().is_none(),
        "completed, not left running"
    );
    assert!(
        queue.claim("a").await.unwrap().is_none(),
        "nothing runs again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_completion_whose_connection_is_killed_is_applied_once() {
    let db = postgres_db().await;
    let queue = db
        .queue_with(QueueConfig {
            retain_completed: true,
            ..QueueConfig::default()
        })
        .await;
    let id = queue.enqueue("a", &1).await.unwrap();
    let lease = queue.claim("a").await.unwrap().unwrap();
    killed_while_waiting(&db, id, async move { lease.complete().await })
        .await
        .expect("the completion was tried again and accepted");
    assert_eq!(
        queue.get(id).await.unwrap().unwrap().state,
        State::Succeeded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_whose_connection_is_killed_is_recorded_once() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    let lease = queue.claim("a").await.unwrap().unwrap();
    let failed = killed_while_waiting(
        &db,
        id,
        async move { lease.fail_permanently("broken").await },
    )
    .await;
    failed.expect("the failure was tried again and accepted");
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!((task.state, task.attempts.len()), (State::Failed, 1));
    assert_eq!(task.last_error.as_deref(), Some("broken"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_and_a_heartbeat_whose_connections_are_killed_hold() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let id = queue.enqueue("a", &1).await.unwrap();
    let lease = queue.claim("a").await.unwrap().unwrap();
    let mut lease = lease;
    let lease = killed_while_waiting(&db, id, async move {
        let extended = lease.extend(Duration::from_secs(600)).await;
        (lease, extended)
    })
    .await;
    let (lease, extended) = lease;
    let until = extended.expect("the heartbeat was tried again and accepted");
    assert!(until > std::time::SystemTime::now() + Duration::from_secs(500));
    let released = killed_while_waiting(&db, id, async move { lease.release().await }).await;
    released.expect("the release was tried again and accepted");
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!((task.state, task.tries), (State::Queued, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_with_follow_ups_whose_connection_is_killed_is_applied_once() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let id = queue.enqueue("order", &1).await.unwrap();
    let lease = queue.claim("order").await.unwrap().unwrap();
    let made = killed_while_waiting(&db, id, async move {
        lease
            .complete_with(vec![
                NewTask::json("ship", &1).unwrap(),
                NewTask::json("invoice", &1).unwrap(),
            ])
            .await
    })
    .await
    .expect("the completion was tried again and accepted");
    assert!(queue.get(id).await.unwrap().is_none());
    let children = queue
        .list(&taskq::ListOptions {
            parent: Some(id),
            ..taskq::ListOptions::default()
        })
        .await
        .unwrap();
    let ids: Vec<TaskId> = children.iter().map(|t| t.id).collect();
    assert_eq!(
        ids,
        made.iter().map(|e| e.id).collect::<Vec<_>>(),
        "inserted once"
    );
}
