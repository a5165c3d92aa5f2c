//! SQLite on a disk that fills up: writes fail with a typed `Full` error,
//! nothing acknowledged is lost, and once space returns the queue works
//! again and its WAL gives back the space it took. Runs on a small tmpfs
//! of its own, which needs root (CI runs as root); elsewhere it says so
//! and passes without running.

#![cfg(feature = "sqlite")]

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;
use taskq::{DatabaseErrorKind, NewTask, Queue};

/// A tmpfs of a few MiB mounted on a temporary directory, unmounted when
/// dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u32) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if mounted {
            return Some(SmallDisk { dir });
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must be able to mount a tmpfs for this test"
        );
        eprintln!("skipped: mounting a small tmpfs needs root");
        None
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// One enqueue, claim and completion of a task with a 16 KiB payload.
async fn churn(queue: &Queue) -> Result<(), taskq::Error> {
    queue
        .enqueue_task(NewTask::raw("churn", vec![1u8; 16 * 1024]))
        .await?;
    if let Some(lease) = queue.claim("churn").await? {
        lease.complete().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_then_the_queue_recovers_and_the_wal_shrinks() {
    let Some(disk) = SmallDisk::mount(8) else {
        return;
    };
    let old_logs = disk.path("old-logs");
    std::fs::write(&old_logs, vec![0u8; 2 * 1024 * 1024]).unwrap();
    let db = disk.path("taskq.db");
    let queue = Queue::open_sqlite(&db).await.unwrap();
    let kept = queue.enqueue("kept", &"acknowledged").await.unwrap();

    // A reader holding a snapshot keeps checkpoints from reusing the WAL
    // from its start, as a long read by another process does: the WAL
    // grows with every write until the disk is full.
    let reader = Connection::open(&db).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM taskq_tasks", [], |row| row.get(0))
        .unwrap();
    let mut full = None;
    for _ in 0..10_000 {
        if let Err(error) = churn(&queue).await {
            full = Some(error);
            break;
        }
    }
    let full = full.expect("the disk filled up");
    assert_eq!(
        full.database_kind(),
        Some(DatabaseErrorKind::Full),
        "{full}"
    );
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let grown = size(&wal);
    assert!(
        grown > 4 * 1024 * 1024,
        "the WAL took the disk: {grown} bytes"
    );

    // The reader ends, and an operator frees space.
    drop(reader);
    std::fs::remove_file(&old_logs).unwrap();

    churn(&queue).await.unwrap();
    let shrunk = size(&wal);
    assert!(
        shrunk < 1024 * 1024,
        "the WAL gave its space back: {grown} -> {shrunk} bytes"
    );
    for round in 0..200 {
        churn(&queue)
            .await
            .unwrap_or_else(|e| panic!("round {round} after space returned: {e}"));
    }
    let task = queue
        .get(kept)
        .await
        .unwrap()
        .expect("nothing acknowledged is lost");
    assert_eq!(task.payload_json::<String>().unwrap(), "acknowledged");

    // A new process on the same file works too.
    drop(queue);
    let again = Queue::open_sqlite(&db).await.unwrap();
    churn(&again).await.unwrap();
}
