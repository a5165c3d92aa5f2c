//! The sqlx twins (feature `sqlx`): enqueue and complete on the caller's
//! own sqlx transaction, with the results of the `tokio-postgres` twins.

use super::*;
use sqlx::Connection;
use taskq::postgres::sqlx as taskq_sqlx;
use taskq::Unique;

async fn pg_pool() -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url())
        .await
        .unwrap()
}

async fn orders(pool: &sqlx::PgPool, schema: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {schema}.orders");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn sqlx_enqueue_commits_and_rolls_back_with_the_caller() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let pool = pg_pool().await;
    let schema = &db.schema;
    let create = format!("CREATE TABLE {schema}.orders (item text NOT NULL)");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&pool)
        .await
        .unwrap();
    let insert = format!("INSERT INTO {schema}.orders (item) VALUES ($1)");

    let mut tx = pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
        .bind("book")
        .execute(&mut *tx)
        .await
        .unwrap();
    let kept = taskq_sqlx::enqueue_in(&mut tx, schema, &NewTask::json("ship", &"book").unwrap())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(insert))
        .bind("lamp")
        .execute(&mut *tx)
        .await
        .unwrap();
    let gone = taskq_sqlx::enqueue_in(&mut tx, schema, &NewTask::json("ship", &"lamp").unwrap())
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    assert_eq!(orders(&pool, schema).await, 1);
    assert_eq!(
        queue.get(kept.id).await.unwrap().unwrap().payload,
        b"\"book\""
    );
    assert!(
        queue.get(gone.id).await.unwrap().is_none(),
        "rolled back with the caller"
    );
    assert_eq!(queue.stats().await.unwrap()[0].queued, 1, "counted once");

    // A batch, with unique keys: a duplicate names its holder, in order.
    let keyed = |key: &str| {
        NewTask::json("mail", &key)
            .unwrap()
            .unique(Unique::key(key))
    };
    let mut tx = pool.begin().await.unwrap();
    let later = NewTask::json("mail", &"later")
        .unwrap()
        .delay(Duration::from_secs(60));
    let batch = [
        keyed("a"),
        keyed("a"),
        NewTask::json("mail", &"plain").unwrap(),
        later,
    ];
    let enqueued = taskq_sqlx::enqueue_many_in(&mut tx, schema, &batch)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!enqueued[0].duplicate && enqueued[1].duplicate);
    assert_eq!(enqueued[1].id, enqueued[0].id);
    assert!(enqueued[0].id < enqueued[2].id && enqueued[2].id < enqueued[3].id);
    let mut conn = pool.acquire().await.unwrap();
    let again = taskq_sqlx::enqueue_in(&mut conn, schema, &keyed("a"))
        .await
        .unwrap();
    assert_eq!((again.id, again.duplicate), (enqueued[0].id, true));
    // A statement failing half-way through a batch (here a trigger of
    // the application's) leaves none of it, in a transaction or not.
    let boom = format!(
        "CREATE FUNCTION {schema}.boom() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN RAISE EXCEPTION 'boom'; END$$; \
         CREATE TRIGGER boom BEFORE INSERT ON {schema}.taskq_tasks FOR EACH ROW \
         WHEN (NEW.action = 'boom') EXECUTE FUNCTION {schema}.boom()"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(boom))
        .execute(&pool)
        .await
        .unwrap();
    let mail = queue.len("mail").await.unwrap();
    let batch = [keyed("b"), NewTask::json("boom", &1).unwrap()];
    let failed = taskq_sqlx::enqueue_many_in(&mut conn, schema, &batch).await;
    assert!(matches!(failed, Err(Error::Database(_))), "{failed:?}");
    assert_eq!(
        queue.len("mail").await.unwrap(),
        mail,
        "none of a failed batch"
    );
    // Without unique keys, a batch is one insert.
    let at = std::time::UNIX_EPOCH + Duration::from_micros(4_102_444_800_123_456);
    let mut plain: Vec<NewTask> = (0..50)
        .map(|i| NewTask::json("bulk", &i).unwrap())
        .collect();
    plain[0] = NewTask::json("bulk", &0).unwrap().run_at(at);
    let ids = taskq_sqlx::enqueue_many_in(&mut conn, schema, &plain)
        .await
        .unwrap();
    assert!(ids.windows(2).all(|w| w[0].id < w[1].id && !w[1].duplicate));
    let bulk = queue.stats().await.unwrap();
    assert_eq!(bulk.iter().find(|s| s.action == "bulk").unwrap().queued, 50);
    assert_eq!(
        queue.get(ids[0].id).await.unwrap().unwrap().not_before,
        at,
        "to the microsecond"
    );
    let later = queue.get(enqueued[3].id).await.unwrap().unwrap();
    assert!(later.not_before > std::time::SystemTime::now() + Duration::from_secs(50));
}

#[tokio::test]
async fn sqlx_completion_is_fenced_and_follow_ups_record_their_parent() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let pool = pg_pool().await;
    let schema = &db.schema;
    queue.enqueue("ship", &1).await.unwrap();
    let lease = queue.claim("ship").await.unwrap().unwrap();
    let follow_up = || vec![NewTask::json("notify", &1).unwrap()];

    let mut tx = pool.begin().await.unwrap();
    taskq_sqlx::complete_in(&mut tx, schema, &lease, follow_up())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        queue.get(lease.id()).await.unwrap().unwrap().state,
        State::Running
    );
    assert_eq!(queue.len("notify").await.unwrap(), 0);

    let mut tx = pool.begin().await.unwrap();
    let follow = taskq_sqlx::complete_in(&mut tx, schema, &lease, follow_up())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(queue.get(lease.id()).await.unwrap().is_none());
    let task = queue.get(follow[0].id).await.unwrap().unwrap();
    assert_eq!(task.parent, Some(lease.id()));

    let mut conn = pool.acquire().await.unwrap();
    let again = taskq_sqlx::complete_in(&mut conn, schema, &lease, follow_up()).await;
    assert!(matches!(again, Err(Error::LeaseLost { .. })), "{again:?}");
    assert_eq!(
        queue.len("notify").await.unwrap(),
        1,
        "a lost lease writes nothing"
    );
    let counts = queue.stats().await.unwrap();
    let notify = counts.iter().find(|s| s.action == "notify").unwrap();
    assert_eq!(notify.queued, 1);
}

#[tokio::test]
async fn sqlx_wakes_idle_workers_only_when_the_transaction_commits() {
    let db = postgres_db().await;
    let slow_poll = QueueConfig {
        poll_interval: Duration::from_secs(30),
        ..QueueConfig::default()
    };
    let queue = db.queue_with(slow_poll).await;
    let pool = pg_pool().await;
    let waiting = tokio::spawn({
        let queue = queue.clone();
        async move { queue.claim_wait("wake", Duration::from_secs(20)).await }
    });
    until_listening(&raw_client().await, &db.schema, 1).await;
    let mut tx = pool.begin().await.unwrap();
    let task = NewTask::json("wake", &1).unwrap();
    taskq_sqlx::enqueue_in(&mut tx, &db.schema, &task)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing to claim before the commit");
    let committed = std::time::Instant::now();
    tx.commit().await.unwrap();
    let lease = waiting.await.unwrap().unwrap().expect("woken");
    assert!(
        committed.elapsed() < Duration::from_secs(10),
        "woken, not polled"
    );
    assert_eq!(lease.task().action, "wake");
}

#[tokio::test]
async fn a_sqlx_error_reaches_the_caller_with_its_kind_and_source() {
    let db = postgres_db().await;
    let _queue = db.queue().await;
    let mut conn = sqlx::PgConnection::connect(&url()).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await
        .unwrap();
    let task = NewTask::json("ship", &1).unwrap();
    let error = taskq_sqlx::enqueue_in(&mut tx, &db.schema, &task)
        .await
        .unwrap_err();
    let Error::Database(ref database) = error else {
        panic!("not a database error: {error:?}");
    };
    assert_eq!(database.kind, DatabaseErrorKind::ReadOnly);
    let source = std::error::Error::source(&error).expect("a source");
    assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");
    tx.rollback().await.unwrap();

    let missing = taskq_sqlx::enqueue_in(&mut conn, "no_such_schema", &task).await;
    assert!(
        matches!(missing, Err(Error::SchemaTooOld { .. })),
        "{missing:?}"
    );
    let bad = taskq_sqlx::enqueue_in(&mut conn, "Bad-Schema", &task).await;
    assert!(matches!(bad, Err(Error::InvalidInput { .. })), "{bad:?}");
}
