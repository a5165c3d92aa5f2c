//! Workflows on the caller's own connection: all or nothing with its
//! transaction, in a transaction of their own on a plain connection, and
//! the edges left by other SQL settled by the triggers.

use super::*;

fn diamond() -> Vec<NewTask> {
    let mut flow = taskq::Workflow::new();
    flow.add("a", NewTask::json("step", &"a").unwrap(), &[])
        .unwrap();
    flow.add("b", NewTask::json("step", &"b").unwrap(), &["a"])
        .unwrap();
    flow.add("c", NewTask::json("step", &"c").unwrap(), &["a"])
        .unwrap();
    flow.add("d", NewTask::json("step", &"d").unwrap(), &["b", "c"])
        .unwrap();
    flow.into_tasks()
}

#[tokio::test]
async fn a_workflow_commits_or_rolls_back_with_the_callers_transaction() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let mut client = raw_client().await;

    let tx = client.transaction().await.unwrap();
    let gone = postgres::enqueue_many_in(&tx, &db.schema, &diamond())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    for enqueued in &gone {
        assert!(queue.get(enqueued.id).await.unwrap().is_none());
    }
    let edges: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM {}.taskq_dependencies", db.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(edges, 0, "no edge survives the rollback");

    // On a plain connection, in a transaction of its own.
    let kept = postgres::enqueue_many_in(&client, &db.schema, &diamond())
        .await
        .unwrap();
    let sink = queue.get(kept[3].id).await.unwrap().unwrap();
    assert_eq!((sink.state, sink.waiting_on), (State::Waiting, 2));
    assert_eq!(queue.links(kept[3].id).await.unwrap().dependencies.len(), 2);

    // A completion by other SQL (a plain DELETE of the running task)
    // releases what waited for it, through the triggers.
    let lease = queue.claim("step").await.unwrap().unwrap();
    assert_eq!(lease.id(), kept[0].id);
    client
        .execute(
            &format!("DELETE FROM {}.taskq_tasks WHERE id = $1", db.schema),
            &[&kept[0].id.0],
        )
        .await
        .unwrap();
    for branch in &kept[1..3] {
        assert_eq!(
            queue.get(branch.id).await.unwrap().unwrap().state,
            State::Queued
        );
    }
    assert_eq!(queue.len("step").await.unwrap(), 2);
}
