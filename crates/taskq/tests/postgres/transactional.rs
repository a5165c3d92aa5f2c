//! Transactional enqueue and completion on the caller's own transaction, and the database's clock.

use super::*;

#[tokio::test]
async fn transactional_enqueue_and_completion_follow_the_callers_transaction() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let mut client = raw_client().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE {}.orders (item text NOT NULL)",
            db.schema
        ))
        .await
        .unwrap();
    let insert = format!("INSERT INTO {}.orders (item) VALUES ($1)", db.schema);

    let tx = client.transaction().await.unwrap();
    tx.execute(&insert, &[&"book"]).await.unwrap();
    let kept = postgres::enqueue_in(&tx, &db.schema, &NewTask::json("ship", &"book").unwrap())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let tx = client.transaction().await.unwrap();
    tx.execute(&insert, &[&"lamp"]).await.unwrap();
    let gone = postgres::enqueue_in(&tx, &db.schema, &NewTask::json("ship", &"lamp").unwrap())
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    assert!(queue.get(kept.id).await.unwrap().is_some());
    assert!(
        queue.get(gone.id).await.unwrap().is_none(),
        "rolled back with the caller"
    );

    let lease = queue.claim("ship").await.unwrap().unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(&insert, &[&"shipped"]).await.unwrap();
    postgres::complete_in(
        &tx,
        &db.schema,
        &lease,
        vec![NewTask::json("notify", &1).unwrap()],
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        queue.get(lease.id()).await.unwrap().unwrap().state,
        State::Running
    );
    assert_eq!(queue.len("notify").await.unwrap(), 0);

    let tx = client.transaction().await.unwrap();
    tx.execute(&insert, &[&"shipped"]).await.unwrap();
    let follow = postgres::complete_in(
        &tx,
        &db.schema,
        &lease,
        vec![NewTask::json("notify", &1).unwrap()],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(queue.get(lease.id()).await.unwrap().is_none());
    assert_eq!(
        queue.get(follow[0].id).await.unwrap().unwrap().parent,
        Some(lease.id())
    );
    let again = postgres::complete_in(&client, &db.schema, &lease, Vec::new()).await;
    assert!(matches!(again, Err(Error::LeaseLost { .. })));

    // The caller's own changes to the tasks later in the transaction are
    // counted (taskq's statements count only themselves).
    queue.enqueue("pack", &1).await.unwrap();
    let lease = queue.claim("pack").await.unwrap().unwrap();
    let tx = client.transaction().await.unwrap();
    postgres::complete_in(&tx, &db.schema, &lease, Vec::new())
        .await
        .unwrap();
    insert_by_hand(&tx, &db.schema, "pack").await;
    tx.commit().await.unwrap();
    assert_eq!(queue.len("pack").await.unwrap(), 1);
}

#[tokio::test]
async fn lease_times_come_from_the_database_clock() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    queue
        .enqueue_task(
            NewTask::json("clock", &1)
                .unwrap()
                .timeout(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let lease = queue.claim("clock").await.unwrap().unwrap();
    let client = raw_client().await;
    let row = client
        .query_one(
            &format!(
                "SELECT expires - created_at, expires <= now() + interval '1 hour' FROM {}.taskq_tasks WHERE id = $1",
                db.schema
            ),
            &[&lease.id().0],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(1),
        "the lease end is measured from the database's now()"
    );
}

#[tokio::test]
async fn a_driver_error_in_the_callers_transaction_keeps_its_source() {
    // The caller's transaction already failed: PostgreSQL refuses
    // everything in it until it is rolled back.
    let db = postgres_db().await;
    drop(db.queue().await);
    let mut client = raw_client().await;
    let tx = client.transaction().await.unwrap();
    assert!(tx.execute("SELECT 1 / 0", &[]).await.is_err());
    let task = NewTask::json("email", &1).unwrap();
    let error = postgres::enqueue_in(&tx, &db.schema, &task)
        .await
        .unwrap_err();
    assert_eq!(
        error.database_kind(),
        Some(DatabaseErrorKind::Other),
        "{error:?}"
    );
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
    let links: Vec<&(dyn std::error::Error + 'static)> =
        std::iter::successors(Some(&*boxed as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        })
        .collect();
    let driver = links
        .iter()
        .find_map(|e| e.downcast_ref::<tokio_postgres::Error>())
        .expect("the driver's error is in the chain");
    assert_eq!(
        driver.code(),
        Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION)
    );
    tx.rollback().await.unwrap();
}
