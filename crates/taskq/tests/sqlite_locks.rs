//! SQLite's write lock held by another process: callers wait up to the
//! busy timeout and then hear a typed busy error, and the end of a try
//! (completion, failure, extension) is tried once more before it does.

#![cfg(all(feature = "sqlite", feature = "testing"))]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use taskq::sqlite::{SqliteBackend, SqliteConfig};
use taskq::testing::TestDatabase;
use taskq::{DatabaseErrorKind, Error, Queue, QueueConfig, State};

fn kind(result: Result<impl std::fmt::Debug, Error>) -> Option<DatabaseErrorKind> {
    result.unwrap_err().database_kind()
}

fn path(db: &TestDatabase) -> PathBuf {
    db.sqlite_path().expect("a SQLite test database")
}

/// A test database and a queue on it whose writes wait `busy_timeout` for
/// the lock.
async fn with_busy_timeout(busy_timeout: Duration) -> (TestDatabase, Queue) {
    let db = TestDatabase::sqlite().unwrap();
    let config = SqliteConfig {
        busy_timeout,
        ..SqliteConfig::default()
    };
    let backend = SqliteBackend::open(path(&db), config).await.unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
    (db, queue)
}

#[tokio::test]
async fn a_held_write_lock_makes_callers_wait_then_fail_as_busy() {
    let (db, queue) = with_busy_timeout(Duration::from_millis(300)).await;
    let mut locker = Connection::open(path(&db)).unwrap();

    // Held longer than the busy timeout: a typed busy error, nothing written.
    let tx = locker
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let started = Instant::now();
    let result = queue.enqueue("a", &1).await;
    assert_eq!(kind(result), Some(DatabaseErrorKind::Busy));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited first"
    );
    assert_eq!(
        queue.len("a").await.unwrap(),
        0,
        "reads are not blocked by the lock"
    );
    tx.rollback().unwrap();

    // Held briefly: the caller waits and succeeds.
    let holder = lock_file_for(path(&db), Duration::from_millis(100));
    queue.enqueue("a", &2).await.unwrap();
    holder.join().unwrap();
    assert_eq!(queue.len("a").await.unwrap(), 1);
}

/// Holds the write lock of the file at `path` from another connection
/// for `hold`, from when this returns; join the thread to wait for the
/// end of the hold.
fn lock_file_for(path: PathBuf, hold: Duration) -> std::thread::JoinHandle<()> {
    let (held, locked) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let mut conn = Connection::open(path).unwrap();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        held.send(()).unwrap();
        std::thread::sleep(hold);
        tx.commit().unwrap();
    });
    locked.recv().unwrap();
    holder
}

#[tokio::test]
async fn the_end_of_a_try_that_finds_the_file_locked_is_tried_once_more() {
    let (db, queue) = with_busy_timeout(Duration::from_millis(200)).await;
    for n in 0..3 {
        queue.enqueue("a", &n).await.unwrap();
    }
    let leases = queue.claim_many("a", 3).await.unwrap();
    let [first, mut second, mut third]: [taskq::Lease; 3] = leases.try_into().unwrap();

    // Locked for longer than one busy timeout, less than two: the repeat
    // gets through, once, and the completion is applied once.
    let holder = lock_file_for(path(&db), Duration::from_millis(300));
    let started = Instant::now();
    let id = first.id();
    first.complete().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250), "it waited");
    holder.join().unwrap();
    assert!(queue.get(id).await.unwrap().is_none());

    // The same for an extension and a failure.
    let holder = lock_file_for(path(&db), Duration::from_millis(300));
    second.extend(Duration::from_secs(60)).await.unwrap();
    holder.join().unwrap();
    let holder = lock_file_for(path(&db), Duration::from_millis(300));
    let id = second.id();
    let outcome = second.fail("broken").await.unwrap();
    holder.join().unwrap();
    assert!(matches!(outcome, taskq::FailOutcome::Retrying { .. }));
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!((task.state, task.tries), (State::Queued, 1), "failed once");

    // Locked for longer than both tries: the caller hears that the file
    // is busy, and the lease still holds once the lock is gone.
    let id = third.id();
    let holder = lock_file_for(path(&db), Duration::from_millis(700));
    let refused = third.extend(Duration::from_secs(60)).await;
    assert_eq!(kind(refused), Some(DatabaseErrorKind::Busy));
    holder.join().unwrap();
    third.complete().await.unwrap();
    assert!(queue.get(id).await.unwrap().is_none());
}
