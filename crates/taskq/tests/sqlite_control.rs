//! Control over tasks, SQLite only: unique keys in the caller's
//! transaction, the upgrade from the schema before them, and claims that
//! never read waiting tasks.

use taskq::sqlite::rusqlite::{Connection, TransactionBehavior};
use taskq::sqlite::{self, SqliteConfig};
use taskq::{NewTask, Queue, State};

fn keyed(n: u32) -> NewTask {
    NewTask::json("sync", &n).unwrap().unique_key("c:1")
}

#[tokio::test]
async fn a_duplicate_in_the_callers_transaction_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let queue = Queue::open_sqlite(&path).await.unwrap();
    let mut conn = Connection::open(&path).unwrap();
    sqlite::configure_connection(&conn, &SqliteConfig::default()).unwrap();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let first = sqlite::enqueue_in(&tx, &keyed(1)).unwrap();
    let again = sqlite::enqueue_in(&tx, &keyed(2)).unwrap();
    assert!(!first.duplicate && again.duplicate && again.id == first.id);
    tx.rollback().unwrap();
    assert!(queue.get(first.id).await.unwrap().is_none());
    assert!(queue.stats().await.unwrap().is_empty());
    let stored = queue.enqueue_task(keyed(3)).await.unwrap();
    assert!(!stored.duplicate);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let many = sqlite::enqueue_many_in(&tx, &[keyed(4), keyed(5)]).unwrap();
    tx.commit().unwrap();
    assert!(many.iter().all(|e| e.duplicate && e.id == stored.id));
    assert_eq!(queue.len("sync").await.unwrap(), 1);
}

/// FNV-1a, as taskq fingerprints its migrations.
fn checksum(sql: &str) -> i64 {
    sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    }) as i64
}

/// A file at schema version 3, the last before unique keys and
/// cancellation, with tasks in every state it knows; its newest task was
/// deleted, so the next id must not reuse it.
fn file_at_version_3(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE taskq_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
             checksum INTEGER NOT NULL, applied_at INTEGER NOT NULL) STRICT",
    )
    .unwrap();
    let old = [
        (
            1,
            "create_tasks",
            include_str!("../src/backend/sqlite/migrations/0001_create_tasks.sql"),
        ),
        (
            2,
            "count_tasks",
            include_str!("../src/backend/sqlite/migrations/0002_count_tasks.sql"),
        ),
        (
            3,
            "count_mark",
            include_str!("../src/backend/sqlite/migrations/0003_count_mark.sql"),
        ),
    ];
    for (version, name, sql) in old {
        conn.execute_batch(sql).unwrap();
        conn.execute(
            "INSERT INTO taskq_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, 0)",
            taskq::sqlite::rusqlite::params![version, name, checksum(sql)],
        )
        .unwrap();
    }
    conn.execute_batch(
        "INSERT INTO taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, expires, finished_at, created_at)
         VALUES ('a', x'31', 'queued', 0, 10, 60000000, NULL, NULL, 0),
                ('a', x'32', 'running', 0, 10, 60000000, 9999999999999999, NULL, 0),
                ('a', x'33', 'failed', 0, 10, 60000000, NULL, 1, 0),
                ('b', x'34', 'queued', 9999999999999999, 10, 60000000, NULL, NULL, 0),
                ('b', x'35', 'queued', 0, 10, 60000000, NULL, NULL, 0);
         DELETE FROM taskq_tasks WHERE id = 5;",
    )
    .unwrap();
}

#[tokio::test]
async fn the_schema_before_control_is_upgraded_with_its_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    file_at_version_3(&path);
    let queue = Queue::open_sqlite(&path).await.unwrap();
    let stats = queue.stats().await.unwrap();
    let a = &stats[0];
    assert_eq!((a.queued, a.running, a.failed, a.cancelled), (1, 1, 1, 0));
    assert_eq!((stats[1].action.as_str(), stats[1].queued), ("b", 1));
    let id = queue.enqueue("b", &6).await.unwrap();
    assert_eq!(id.0, 6, "ids are never reused");
    let lease = queue
        .claim("a")
        .await
        .unwrap()
        .expect("the old queued task");
    assert_eq!((lease.payload(), lease.task().priority), (&b"1"[..], 0));
    queue.cancel(lease.id()).await.unwrap();
    lease.fail("late").await.unwrap();
    queue.retry(taskq::TaskId(3)).await.unwrap();
    let after = queue.stats().await.unwrap();
    assert_eq!(
        (after[0].queued, after[0].cancelled, after[0].failed),
        (1, 1, 0)
    );
    let conn = Connection::open(&path).unwrap();
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'taskq_tasks' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        [
            "taskq_tasks_finished",
            "taskq_tasks_leased",
            "taskq_tasks_parent",
            "taskq_tasks_ready",
            "taskq_tasks_unique",
            "taskq_tasks_unique_slot",
            "taskq_tasks_waiting"
        ]
    );
    assert_eq!(
        queue.get(taskq::TaskId(3)).await.unwrap().unwrap().state,
        State::Queued
    );
}

#[tokio::test]
async fn a_claim_reads_no_waiting_task_however_many_wait() {
    use taskq::sqlite::rusqlite::StatementStatus;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wait.db");
    let queue = Queue::open_sqlite(&path).await.unwrap();
    let later = (0..20_000)
        .map(|n| {
            NewTask::json("a", &n)
                .unwrap()
                .delay(std::time::Duration::from_secs(3600))
        })
        .collect();
    queue.enqueue_many(later).await.unwrap();
    for priority in [-5, 3, 9] {
        queue
            .enqueue_task(NewTask::json("a", &1).unwrap().priority(priority))
            .await
            .unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    let mut claim = tx
        .prepare(include_str!("../src/backend/sqlite/sql/task_claim.sql"))
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let claimed = claim
        .query_map(
            taskq::sqlite::rusqlite::params![now, "a", 10, "{}"],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
        .count();
    let steps = claim.get_status(StatementStatus::VmStep);
    assert_eq!(claimed, 3, "the ready ones, and no waiting one");
    assert!(steps < 2_000, "{steps} steps: the waiting tasks were read");
    drop(claim);
    tx.rollback().unwrap();
    assert_eq!(queue.len("a").await.unwrap(), 3);
}
