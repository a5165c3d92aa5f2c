//! The sqlx twins on SQLite (feature `sqlx`): enqueue and complete on the
//! caller's own sqlx transaction, in the same program as taskq's
//! `rusqlite` (both link one bundled SQLite), with the results of the
//! `rusqlite` twins.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Connection;
use taskq::sqlite::sqlx as taskq_sqlx;
use taskq::testing::TestDatabase;
use taskq::{DatabaseErrorKind, Error, NewTask, QueueConfig, State, Unique};

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(5))
}

async fn app_pool(path: &Path) -> SqlitePool {
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options(path))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS orders (item TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

#[tokio::test]
async fn sqlx_enqueue_commits_and_rolls_back_with_the_caller() {
    let db = TestDatabase::sqlite().unwrap();
    let queue = db.queue().await.unwrap();
    let pool = app_pool(&db.sqlite_path().unwrap()).await;
    let mut conn = pool.acquire().await.unwrap();

    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("INSERT INTO orders (item) VALUES (?1)")
        .bind("book")
        .execute(&mut *tx)
        .await
        .unwrap();
    let kept = taskq_sqlx::enqueue_in(&mut tx, &NewTask::json("ship", &"book").unwrap())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("INSERT INTO orders (item) VALUES (?1)")
        .bind("lamp")
        .execute(&mut *tx)
        .await
        .unwrap();
    let gone = taskq_sqlx::enqueue_in(&mut tx, &NewTask::json("ship", &"lamp").unwrap())
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(orders, 1);
    assert_eq!(
        queue.get(kept.id).await.unwrap().unwrap().payload,
        b"\"book\""
    );
    assert!(
        queue.get(gone.id).await.unwrap().is_none(),
        "rolled back with the caller"
    );

    // A batch, with unique keys, outside a transaction: all or nothing
    // still, and a duplicate names its holder.
    let keyed = |key: &str| {
        NewTask::json("mail", &key)
            .unwrap()
            .unique(Unique::key(key))
    };
    let at = std::time::UNIX_EPOCH + Duration::from_micros(4_102_444_800_123_456);
    let batch = [
        keyed("a"),
        keyed("a"),
        NewTask::json("mail", &"plain").unwrap().run_at(at),
    ];
    let enqueued = taskq_sqlx::enqueue_many_in(&mut conn, &batch)
        .await
        .unwrap();
    assert!(!enqueued[0].duplicate && enqueued[1].duplicate);
    assert_eq!(enqueued[1].id, enqueued[0].id);
    assert!(enqueued[0].id < enqueued[2].id);
    assert_eq!(
        queue.get(enqueued[2].id).await.unwrap().unwrap().not_before,
        at
    );
    let again = taskq_sqlx::enqueue_in(&mut conn, &keyed("a"))
        .await
        .unwrap();
    assert_eq!((again.id, again.duplicate), (enqueued[0].id, true));
    let stats = queue.stats().await.unwrap();
    assert_eq!(stats.iter().find(|s| s.action == "mail").unwrap().queued, 2);

    // A statement failing half-way through a batch (here a trigger of
    // the application's) leaves none of it, in a transaction or not.
    let boom = "CREATE TRIGGER boom BEFORE INSERT ON taskq_tasks WHEN NEW.action = 'boom' \
                BEGIN SELECT RAISE(ABORT, 'boom'); END";
    sqlx::query(boom).execute(&mut *conn).await.unwrap();
    let batch = [keyed("b"), NewTask::json("boom", &1).unwrap()];
    let failed = taskq_sqlx::enqueue_many_in(&mut conn, &batch).await;
    assert!(matches!(failed, Err(Error::Database(_))), "{failed:?}");
    assert_eq!(
        queue.len("mail").await.unwrap(),
        1,
        "none of a failed batch"
    );
}

#[tokio::test]
async fn sqlx_completion_is_fenced_and_follow_ups_record_their_parent() {
    let db = TestDatabase::sqlite().unwrap();
    let queue = db.queue().await.unwrap();
    let pool = app_pool(&db.sqlite_path().unwrap()).await;
    let mut conn = pool.acquire().await.unwrap();
    queue.enqueue("ship", &1).await.unwrap();
    let lease = queue.claim("ship").await.unwrap().unwrap();
    let follow_up = || vec![NewTask::json("notify", &1).unwrap()];

    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
    taskq_sqlx::complete_in(&mut tx, &lease, follow_up())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        queue.get(lease.id()).await.unwrap().unwrap().state,
        State::Running
    );
    assert_eq!(queue.len("notify").await.unwrap(), 0);

    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
    let follow = taskq_sqlx::complete_in(&mut tx, &lease, follow_up())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(queue.get(lease.id()).await.unwrap().is_none());
    assert_eq!(
        queue.get(follow[0].id).await.unwrap().unwrap().parent,
        Some(lease.id())
    );

    let again = taskq_sqlx::complete_in(&mut conn, &lease, follow_up()).await;
    assert!(matches!(again, Err(Error::LeaseLost { .. })), "{again:?}");
    assert_eq!(
        queue.len("notify").await.unwrap(),
        1,
        "a lost lease writes nothing"
    );
}

#[tokio::test]
async fn sqlx_commits_wake_idle_workers() {
    let db = TestDatabase::sqlite().unwrap();
    let slow_poll = QueueConfig {
        poll_interval: Duration::from_secs(30),
        ..QueueConfig::default()
    };
    let queue = db.queue_with(slow_poll).await.unwrap();
    let pool = app_pool(&db.sqlite_path().unwrap()).await;
    let waiting = tokio::spawn({
        let queue = queue.clone();
        async move { queue.claim_wait("wake", Duration::from_secs(20)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut conn = pool.acquire().await.unwrap();
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
    taskq_sqlx::enqueue_in(&mut tx, &NewTask::json("wake", &1).unwrap())
        .await
        .unwrap();
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
    let db = TestDatabase::sqlite().unwrap();
    let _queue = db.queue().await.unwrap();
    let path = db.sqlite_path().unwrap();
    let mut read_only = sqlx::SqliteConnection::connect_with(&options(&path).read_only(true))
        .await
        .unwrap();
    let task = NewTask::json("ship", &1).unwrap();
    let error = taskq_sqlx::enqueue_in(&mut read_only, &task)
        .await
        .unwrap_err();
    let Error::Database(ref database) = error else {
        panic!("not a database error: {error:?}");
    };
    assert_eq!(database.kind, DatabaseErrorKind::ReadOnly, "{error}");
    let source = std::error::Error::source(&error).expect("a source");
    assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");

    let empty = tempfile::tempdir().unwrap();
    let mut unmigrated = sqlx::SqliteConnection::connect_with(
        &options(&empty.path().join("new.db")).create_if_missing(true),
    )
    .await
    .unwrap();
    let missing = taskq_sqlx::enqueue_in(&mut unmigrated, &task).await;
    assert!(
        matches!(missing, Err(Error::SchemaTooOld { .. })),
        "{missing:?}"
    );
}
