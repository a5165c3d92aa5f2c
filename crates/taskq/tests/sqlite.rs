//! The conformance suite and the SQLite-only behaviour, on real files.

mod conformance;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, TransactionBehavior};
use taskq::sqlite::{self, Durability, SqliteBackend, SqliteConfig};
use taskq::testing::TestDatabase;
use taskq::{DatabaseErrorKind, Error, NewTask, Queue, QueueConfig, State};

use conformance::TestDb;

/// A SQLite file of `taskq::testing`, which the helpers of this suite
/// age by hand.
struct SqliteDb {
    db: TestDatabase,
}

impl SqliteDb {
    fn path(&self) -> PathBuf {
        self.db.sqlite_path().expect("a SQLite test database")
    }
}

#[async_trait]
impl TestDb for SqliteDb {
    async fn queue_with(&self, config: QueueConfig) -> Queue {
        self.db.queue_with(config).await.unwrap()
    }

    async fn age_schedule(&self, name: &str, by: Duration) {
        let conn = Connection::open(self.path()).unwrap();
        let by = i64::try_from(by.as_micros()).unwrap();
        let aged = conn
            .execute(
                "UPDATE taskq_schedules SET next_at = next_at - ?2 WHERE name = ?1",
                rusqlite::params![name, by],
            )
            .unwrap();
        assert_eq!(aged, 1, "no schedule {name}");
    }

    async fn age_finished(&self, ids: &[taskq::TaskId], by: Duration) {
        let mut conn = Connection::open(self.path()).unwrap();
        let by = i64::try_from(by.as_micros()).unwrap();
        let tx = conn.transaction().unwrap();
        for id in ids {
            let aged = tx
                .execute(
                    "UPDATE taskq_tasks SET finished_at = finished_at - ?2 WHERE id = ?1 AND finished_at IS NOT NULL",
                    rusqlite::params![id.0, by],
                )
                .unwrap();
            assert_eq!(aged, 1, "task {id} is not finished");
        }
        tx.commit().unwrap();
    }
}

async fn sqlite_db() -> SqliteDb {
    SqliteDb {
        db: TestDatabase::sqlite().unwrap(),
    }
}

conformance_tests!(sqlite_db);

fn kind(result: Result<impl std::fmt::Debug, Error>) -> Option<DatabaseErrorKind> {
    result.unwrap_err().database_kind()
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let text = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let result = Queue::open_sqlite(&path).await;
    assert_eq!(kind(result), Some(DatabaseErrorKind::NotADatabase));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "the file is untouched"
    );
}

#[tokio::test]
async fn in_memory_and_empty_paths_are_refused() {
    for path in [":memory:", ""] {
        let result = SqliteBackend::open(path, SqliteConfig::default()).await;
        assert!(matches!(
            result,
            Err(Error::InvalidInput { field: "path", .. })
        ));
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let db = sqlite_db().await;
    let queue = db.queue().await;
    queue.enqueue("a", &1).await.unwrap();
    let conn = Connection::open(db.path()).unwrap();
    conn.execute(
        "INSERT INTO taskq_migrations (version, name, checksum, applied_at) VALUES (99, 'future', 0, 0)",
        [],
    )
    .unwrap();
    let newer = |r: Result<_, Error>| {
        matches!(
            r,
            Err(Error::SchemaTooNew {
                found: 99,
                supported: sqlite::SCHEMA_VERSION
            })
        )
    };
    assert!(newer(queue.migrate().await));
    assert!(newer(Queue::open_sqlite(db.path()).await.map(drop)));
    let unmigrated = SqliteConfig {
        migrate: false,
        ..SqliteConfig::default()
    };
    assert!(newer(
        SqliteBackend::open(db.path(), unmigrated).await.map(drop)
    ));
    assert_eq!(queue.len("a").await.unwrap(), 1, "the data is still there");
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let db = sqlite_db().await;
    db.queue().await;
    let conn = Connection::open(db.path()).unwrap();
    conn.execute(
        "UPDATE taskq_migrations SET checksum = 42 WHERE version = 1",
        [],
    )
    .unwrap();
    let result = Queue::open_sqlite(db.path()).await;
    assert!(matches!(
        result,
        Err(Error::MigrationMismatch { version: 1 })
    ));
}

#[tokio::test]
async fn an_unmigrated_database_says_so() {
    let db = sqlite_db().await;
    let config = SqliteConfig {
        migrate: false,
        ..SqliteConfig::default()
    };
    let backend = SqliteBackend::open(db.path(), config).await.unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
    assert!(matches!(
        queue.enqueue("a", &1).await,
        Err(Error::SchemaTooOld {
            found: 0,
            needed: sqlite::SCHEMA_VERSION
        })
    ));
    queue.migrate().await.unwrap();
    queue.enqueue("a", &1).await.unwrap();
}

#[test]
fn concurrent_migrations_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let conn = Connection::open(&path).unwrap();
                sqlite::configure_connection(&conn, &SqliteConfig::default()).unwrap();
                sqlite::migrate_in(&conn).unwrap();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    let applied: i64 = conn
        .query_row("SELECT count(*) FROM taskq_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied, sqlite::SCHEMA_VERSION);
}

fn app_connection(db: &SqliteDb) -> Connection {
    let conn = Connection::open(db.path()).unwrap();
    sqlite::configure_connection(&conn, &SqliteConfig::default()).unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)",
    )
    .unwrap();
    conn
}

#[tokio::test]
async fn a_workflow_commits_or_rolls_back_with_the_callers_transaction() {
    let db = sqlite_db().await;
    let queue = db.queue().await;
    let mut conn = app_connection(&db);
    let mut flow = taskq::Workflow::new();
    flow.add("a", NewTask::json("step", &"a").unwrap(), &[])
        .unwrap();
    flow.add("b", NewTask::json("step", &"b").unwrap(), &["a"])
        .unwrap();
    let tasks = flow.into_tasks();

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let gone = sqlite::enqueue_many_in(&tx, &tasks).unwrap();
    tx.rollback().unwrap();
    assert!(queue.get(gone[1].id).await.unwrap().is_none());
    let edges: i64 = conn
        .query_row("SELECT count(*) FROM taskq_dependencies", [], |r| r.get(0))
        .unwrap();
    assert_eq!(edges, 0, "no edge survives the rollback");

    let kept = sqlite::enqueue_many_in(&conn, &tasks).unwrap();
    assert_eq!(
        queue.get(kept[1].id).await.unwrap().unwrap().state,
        State::Waiting
    );
    // A completion by other SQL, on a connection configured by taskq,
    // releases what waited for it through the triggers.
    let lease = queue.claim("step").await.unwrap().unwrap();
    conn.execute("DELETE FROM taskq_tasks WHERE id = ?1", [lease.id().0])
        .unwrap();
    assert_eq!(
        queue.get(kept[1].id).await.unwrap().unwrap().state,
        State::Queued
    );
}

#[tokio::test]
async fn transactional_enqueue_commits_and_rolls_back_with_the_caller() {
    let db = sqlite_db().await;
    let queue = db.queue().await;
    let mut conn = app_connection(&db);

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    tx.execute("INSERT INTO orders (item) VALUES ('book')", [])
        .unwrap();
    let kept = sqlite::enqueue_in(&tx, &NewTask::json("ship", &"book").unwrap()).unwrap();
    tx.commit().unwrap();

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    tx.execute("INSERT INTO orders (item) VALUES ('lamp')", [])
        .unwrap();
    let batch = [
        NewTask::json("ship", &"lamp").unwrap(),
        NewTask::json("bill", &"lamp").unwrap(),
    ];
    let gone = sqlite::enqueue_many_in(&tx, &batch).unwrap();
    tx.rollback().unwrap();

    let orders: i64 = conn
        .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orders, 1);
    assert!(queue.get(kept.id).await.unwrap().is_some());
    for id in gone {
        assert!(
            queue.get(id.id).await.unwrap().is_none(),
            "rolled back with the caller"
        );
    }
    assert_eq!(queue.len("ship").await.unwrap(), 1);
    assert_eq!(queue.len("bill").await.unwrap(), 0);

    let bad = sqlite::enqueue_in(&conn, &NewTask::json("", &1).unwrap());
    assert!(matches!(
        bad,
        Err(Error::InvalidInput {
            field: "action",
            ..
        })
    ));
}

#[tokio::test]
async fn transactional_completion_commits_with_the_callers_writes() {
    let db = sqlite_db().await;
    let queue = db.queue().await;
    let mut conn = app_connection(&db);
    let id = queue.enqueue("ship", &"book").await.unwrap();
    let lease = queue.claim("ship").await.unwrap().unwrap();

    // Rolled back: nothing happened, the lease is still good.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    tx.execute("INSERT INTO orders (item) VALUES ('shipped book')", [])
        .unwrap();
    sqlite::complete_in(&tx, &lease, vec![NewTask::json("notify", &1).unwrap()]).unwrap();
    tx.rollback().unwrap();
    assert_eq!(queue.get(id).await.unwrap().unwrap().state, State::Running);
    assert_eq!(queue.len("notify").await.unwrap(), 0);

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    tx.execute("INSERT INTO orders (item) VALUES ('shipped book')", [])
        .unwrap();
    let follow =
        sqlite::complete_in(&tx, &lease, vec![NewTask::json("notify", &1).unwrap()]).unwrap();
    tx.commit().unwrap();
    assert!(queue.get(id).await.unwrap().is_none());
    assert_eq!(
        queue.get(follow[0].id).await.unwrap().unwrap().parent,
        Some(id)
    );

    // Completing twice is fenced.
    let again = sqlite::complete_in(&conn, &lease, Vec::new());
    assert!(matches!(again, Err(Error::LeaseLost { .. })));
}

#[tokio::test]
async fn durability_settings_reach_sqlite() {
    let db = sqlite_db().await;
    for (durability, expected) in [(Durability::PowerLoss, 2), (Durability::ProcessCrash, 1)] {
        let conn = Connection::open(db.path()).unwrap();
        let config = SqliteConfig {
            durability,
            ..SqliteConfig::default()
        };
        sqlite::configure_connection(&conn, &config).unwrap();
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        let journal: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!((synchronous, journal.as_str()), (expected, "wal"));
        let backend = SqliteBackend::open(db.path(), config).await.unwrap();
        let queue = Queue::new(backend, QueueConfig::default()).unwrap();
        queue.enqueue("a", &1).await.unwrap();
    }
}

#[tokio::test]
async fn group_commit_acknowledges_each_caller_with_its_own_result() {
    let db = sqlite_db().await;
    let queue = db.queue().await;
    let mut calls = Vec::new();
    for i in 0..200 {
        let queue = queue.clone();
        calls.push(tokio::spawn(async move {
            // Every tenth call fails inside the shared commit.
            if i % 10 == 0 {
                let stale = taskq::LeaseRef {
                    id: taskq::TaskId(1_000_000 + i),
                    token: 1,
                };
                queue
                    .backend()
                    .task_complete(stale, Vec::new(), false, None)
                    .await
                    .map(|_| None)
            } else {
                queue.enqueue("g", &i).await.map(Some)
            }
        }));
    }
    let mut ok = 0;
    for (i, call) in calls.into_iter().enumerate() {
        match call.await.unwrap() {
            Ok(Some(_)) => ok += 1,
            Err(Error::LeaseLost { .. }) => assert_eq!(i % 10, 0),
            other => panic!("call {i}: {other:?}"),
        }
    }
    assert_eq!(ok, 180);
    assert_eq!(
        queue.len("g").await.unwrap(),
        180,
        "one failing call spoils no other"
    );
}

/// `stats` as reported, and as counted in the table by hand; the count mark.
async fn stats_and_table(
    queue: &Queue,
    conn: &Connection,
) -> (
    BTreeMap<(String, State), u64>,
    BTreeMap<(String, State), u64>,
    i64,
) {
    let mut statement = conn
        .prepare("SELECT action, state, count(*) FROM taskq_tasks GROUP BY action, state")
        .unwrap();
    let table = statement
        .query_map([], |row| {
            let state: String = row.get(1)?;
            Ok((
                (row.get(0)?, state.parse().unwrap()),
                row.get::<_, i64>(2)? as u64,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mark = conn
        .query_row("SELECT counted_to FROM taskq_count_mark", [], |r| r.get(0))
        .unwrap();
    (conformance::reported_stats(queue).await, table, mark)
}

#[tokio::test]
async fn inserts_are_counted_live_until_adopted_past_the_mark() {
    let db = sqlite_db().await;
    let queue = db
        .queue_with(QueueConfig {
            retain_completed: true,
            ..QueueConfig::default()
        })
        .await;
    let conn = app_connection(&db);
    let tasks = |action: &str, n: usize| -> Vec<NewTask> {
        (0..n).map(|i| NewTask::json(action, &i).unwrap()).collect()
    };
    let check = async |step: &str| -> i64 {
        let (reported, table, mark) = stats_and_table(&queue, &conn).await;
        assert_eq!(reported, table, "stats after {step}");
        mark
    };
    // Below the adoption threshold: counted live, in every state.
    queue.enqueue_many(tasks("a", 600)).await.unwrap();
    let leases = queue.claim_many("a", 4).await.unwrap();
    let mut leases = leases.into_iter();
    leases.next().unwrap().complete().await.unwrap();
    leases.next().unwrap().fail_permanently("no").await.unwrap();
    queue.enqueue("b", &1).await.unwrap();
    assert_eq!(check("600 tasks, some claimed, done or failed").await, 0);
    // Past it: the next insert adopts them all and moves the mark.
    queue.enqueue_many(tasks("b", 600)).await.unwrap();
    let mark = check("adoption").await;
    assert_eq!(mark, 1201, "the mark is at the newest task");
    let kept: i64 = conn
        .query_row("SELECT sum(n) FROM taskq_counts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 1201, "every task is in the kept counts");
    // Adopted tasks change state through taskq and by hand (the
    // triggers); a new task above the mark is counted live.
    let lease = queue.claim("a").await.unwrap().unwrap();
    check("a claim of an adopted task").await;
    lease.complete().await.unwrap();
    check("its completion").await;
    for (step, sql) in [
        ("a claim by hand", "UPDATE taskq_tasks SET state = 'running', expires = 1 WHERE id = 20"),
        ("a deletion by hand", "DELETE FROM taskq_tasks WHERE id = 21"),
        (
            "an insert by hand",
            "INSERT INTO taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, created_at)
             VALUES ('a', x'7b7d', 'queued', 0, 1, 1, 0)",
        ),
        (
            "a deletion by hand above the mark",
            "DELETE FROM taskq_tasks WHERE id = (SELECT max(id) FROM taskq_tasks)",
        ),
    ] {
        conn.execute(sql, []).unwrap();
        check(step).await;
    }
    leases.next().unwrap().complete().await.unwrap();
    check("the completion of a task claimed before adoption").await;
    // Inserts on the caller's connection adopt too, reading the mark.
    sqlite::enqueue_many_in(&conn, &tasks("d", 1100)).unwrap();
    let mark = check("1,100 inserts on the caller's connection").await;
    assert_eq!(mark, 2302);
    assert_eq!(queue.len("d").await.unwrap(), 1100);
    // Tasks inserted by hand, by other programs: a claim adopts them
    // (at most once a second per process, so a fresh one here).
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1100)
         INSERT INTO taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, created_at)
         SELECT 'e', x'7b7d', 'queued', 0, 1, 1, 0 FROM n",
        [],
    )
    .unwrap();
    let fresh = db.queue().await;
    let lease = fresh.claim("e").await.unwrap().unwrap();
    lease.release().await.unwrap();
    assert_eq!(check("1,100 inserts by hand and a claim").await, 3402);
}

#[tokio::test]
async fn a_test_database_on_a_manual_clock_reaches_delays_backoffs_and_lease_ends() {
    use taskq::testing::{self, Ended};
    use taskq::worker::{TaskContext, Worker, WorkerConfig};

    let db = TestDatabase::sqlite_manual_clock().unwrap();
    let queue = db.queue().await.unwrap();
    let mut worker = Worker::new(queue.clone(), WorkerConfig::default());
    worker
        .handle("flaky", |_: u32, ctx: TaskContext| async move {
            match ctx.tries() {
                1 => Err("not yet".to_owned()),
                _ => Ok(()),
            }
        })
        .unwrap()
        .handle("later", |_: u32, _ctx: TaskContext| async {
            Ok::<_, String>(())
        })
        .unwrap();
    queue.enqueue("flaky", &1u32).await.unwrap();
    let task = NewTask::json("later", &2u32).unwrap();
    queue
        .enqueue_task(task.delay(Duration::from_secs(3600)))
        .await
        .unwrap();
    // The retry waits for its backoff and the other for its hour.
    let first = testing::drain(&worker).await.unwrap();
    assert_eq!(first.runs.len(), 1);
    assert_eq!(first.runs[0].ended, Ended::Retried);
    assert!(testing::drain(&worker).await.unwrap().runs.is_empty());
    db.advance(Duration::from_secs(3600)).unwrap();
    let after = testing::drain(&worker).await.unwrap();
    assert_eq!(after.ended(Ended::Completed), 2, "{after:?}");
    // A lease ends when the clock passes it: the task runs again.
    let id = queue
        .enqueue_task(
            NewTask::json("later", &3u32)
                .unwrap()
                .timeout(Duration::from_secs(30)),
        )
        .await
        .unwrap()
        .id;
    let held = queue.claim("later").await.unwrap().unwrap();
    assert!(testing::drain(&worker).await.unwrap().runs.is_empty());
    db.advance(Duration::from_secs(31)).unwrap();
    let again = testing::drain(&worker).await.unwrap();
    assert_eq!(again.runs.len(), 1);
    assert_eq!((again.runs[0].task.id, again.runs[0].task.tries), (id, 2));
    assert!(
        held.complete().await.is_err(),
        "the old lease is fenced out"
    );
    // Only a database on a manual clock moves it.
    let plain = TestDatabase::sqlite().unwrap();
    assert!(plain.clock().is_none());
    assert!(matches!(
        plain.advance(Duration::from_secs(1)),
        Err(Error::InvalidInput { field: "clock", .. })
    ));
}

/// An application's own error, wrapping taskq's as applications do.
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("could not queue the welcome email")]
    Queue(#[from] Error),
}

/// Each error of `error`'s source chain, `error` first.
fn chain<'e>(
    error: &'e (dyn std::error::Error + 'static),
) -> Vec<&'e (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source()).collect()
}

/// Runs `future` to its end on a runtime of its own.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn a_driver_error_in_the_callers_transaction_keeps_its_source_through_an_app_error() {
    fn assert_wrappable<E: std::error::Error + Send + Sync + 'static>() {}
    assert_wrappable::<Error>();
    // A read-only connection to a migrated file: the insert fails in
    // SQLite itself.
    let db = TestDatabase::sqlite().unwrap();
    drop(block_on(db.queue()));
    let conn = Connection::open_with_flags(
        db.sqlite_path().unwrap(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let enqueue = || -> Result<taskq::Enqueued, AppError> {
        Ok(sqlite::enqueue_in(
            &conn,
            &NewTask::json("email", &1).unwrap(),
        )?)
    };
    let error = enqueue().unwrap_err();
    let AppError::Queue(queue_error) = &error;
    assert!(matches!(queue_error, Error::Database(_)), "{queue_error:?}");
    assert_eq!(
        queue_error.database_kind(),
        Some(DatabaseErrorKind::ReadOnly)
    );
    let links = chain(&error);
    assert!(
        links
            .iter()
            .any(|e| e.downcast_ref::<rusqlite::Error>().is_some()),
        "the driver's error is in the chain: {links:?}"
    );
    assert!(
        links.last().unwrap().to_string().contains("readonly"),
        "{links:?}"
    );
}
