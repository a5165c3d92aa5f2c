//! A write that the server rolls back to break a deadlock runs again: a
//! batch of completions, or a failure that cancels down a workflow,
//! caught in a lock cycle with another session is applied once the cycle
//! is broken, instead of failing and leaving its task to run again when
//! its lease expires.

use super::*;

// A single-threaded runtime: the two completions are both waiting for the
// completer when it next runs, so they go out in one batch (one statement
// that locks the first task, then the second).
#[tokio::test]
async fn a_batch_of_completions_rolled_back_to_break_a_deadlock_runs_again() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let first = queue.enqueue("a", &1).await.unwrap();
    let second = queue.enqueue("a", &2).await.unwrap();
    let leases = queue.claim_many("a", 2).await.unwrap();
    let [a, b]: [taskq::Lease; 2] = leases.try_into().unwrap();
    let table = format!("\"{}\".taskq_tasks", db.schema);

    // Another session holds the second task's row.
    let mut other = raw_client().await;
    let tx = slow_to_check(&mut other).await;
    let lock = format!("SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE");
    tx.execute(&lock, &[&second.0]).await.unwrap();

    let batch = tokio::spawn(async move { tokio::join!(a.complete(), b.complete()) });
    pid_waiting_for_a_lock(&raw_client().await, &db.schema).await;
    // The batch holds the first task's row and waits for the second: asking
    // for the first closes the cycle, and the server rolls the batch back.
    tx.execute(&lock, &[&first.0]).await.unwrap();
    tx.rollback().await.unwrap();

    let (done_a, done_b) = tokio::time::timeout(Duration::from_secs(20), batch)
        .await
        .expect("the batch finished")
        .unwrap();
    done_a.expect("the first completion ran again and was accepted");
    done_b.expect("the second completion ran again and was accepted");
    assert!(queue.get(first).await.unwrap().is_none());
    assert!(queue.get(second).await.unwrap().is_none());
    assert!(
        queue.claim("a").await.unwrap().is_none(),
        "nothing runs again"
    );
}

/// A transaction of another session that checks for deadlocks only after
/// 30 s, so that the check of the write it blocks (after the server's
/// default of 1 s) is the one that finds a cycle, and rolls the write back.
async fn slow_to_check(other: &mut tokio_postgres::Client) -> tokio_postgres::Transaction<'_> {
    let tx = other.transaction().await.unwrap();
    tx.batch_execute("SET LOCAL deadlock_timeout = '30s'")
        .await
        .unwrap();
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_whose_cancellations_deadlock_runs_again() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let dependency = queue.enqueue("a", &1).await.unwrap();
    let dependent = queue
        .enqueue_task(NewTask::json("b", &2).unwrap().depends_on([dependency]))
        .await
        .unwrap()
        .id;
    let lease = queue.claim("a").await.unwrap().unwrap();
    let table = format!("\"{}\".taskq_tasks", db.schema);
    let lock = format!("SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE");

    // The failure locks its task, then its trigger waits to cancel the
    // dependent, which the other session holds; the other session then
    // asks for the failed task's row.
    let mut other = raw_client().await;
    let tx = slow_to_check(&mut other).await;
    tx.execute(&lock, &[&dependent.0]).await.unwrap();
    let failed = tokio::spawn(async move { lease.fail_permanently("broken").await });
    pid_waiting_for_a_lock(&raw_client().await, &db.schema).await;
    tx.execute(&lock, &[&dependency.0]).await.unwrap();
    tx.rollback().await.unwrap();

    tokio::time::timeout(Duration::from_secs(20), failed)
        .await
        .expect("the failure finished")
        .unwrap()
        .expect("the failure ran again and was accepted");
    let failed = queue.get(dependency).await.unwrap().unwrap();
    assert_eq!((failed.state, failed.attempts.len()), (State::Failed, 1));
    let cancelled = queue.get(dependent).await.unwrap().unwrap();
    assert_eq!(
        cancelled.state,
        State::Cancelled,
        "cancelled down the graph"
    );
}
