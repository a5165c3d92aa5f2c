//! The operating system's file-change notifications on the database's WAL
//! (through the `notify` crate: inotify on Linux, kqueue on macOS and the
//! BSDs, ReadDirectoryChangesW on Windows). Every commit of every
//! connection, in any process, appends to the WAL, so a change there is
//! the first sign that someone committed; the watch then reads the data
//! version to know.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// A watch of one WAL file, which rings `bell` (and sets `rang`) after
/// the file changed, while it is on.
pub(super) struct WalWatch {
    watcher: RecommendedWatcher,
    wal: PathBuf,
    on: bool,
}

/// The WAL file of the database file `db`.
fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Watches the WAL of `db`, which must exist (it does while a connection
/// of this process has the database open in WAL mode). A ring stands for
/// any number of changes since the bell was last answered: a look at the
/// data version covers every commit before it.
pub(super) fn watch_wal(
    db: &Path,
    bell: SyncSender<()>,
    rang: Arc<AtomicBool>,
) -> notify::Result<WalWatch> {
    // An error the notifications report rings too: the watch looks, and a
    // look costs one read.
    let mut watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        rang.store(true, Ordering::SeqCst);
        let _ = bell.try_send(());
    })?;
    let wal = wal_path(db);
    watcher.watch(&wal, RecursiveMode::NonRecursive)?;
    Ok(WalWatch {
        watcher,
        wal,
        on: true,
    })
}

impl WalWatch {
    /// Turns the watch on or off: off while no waiter waits idle, so that
    /// this process's own busy commits cost no notifications.
    pub(super) fn set(&mut self, on: bool) -> notify::Result<()> {
        if on == self.on {
            return Ok(());
        }
        if on {
            self.watcher.watch(&self.wal, RecursiveMode::NonRecursive)?;
        } else {
            self.watcher.unwatch(&self.wal)?;
        }
        self.on = on;
        Ok(())
    }

    /// Whether the watch is on.
    pub(super) fn is_on(&self) -> bool {
        self.on
    }
}

/// What the watch uses, for its log line.
pub(super) fn kind() -> &'static str {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        "inotify"
    } else if cfg!(target_os = "windows") {
        "ReadDirectoryChangesW"
    } else {
        "kqueue"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn writes_to_the_wal_ring_once_while_on_and_never_while_off() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        std::fs::write(wal_path(&db), b"").unwrap();
        let (bell, rings) = mpsc::sync_channel(1);
        let rang = Arc::new(AtomicBool::new(false));
        let mut watch = watch_wal(&db, bell, Arc::clone(&rang)).unwrap();
        assert!(
            rings.recv_timeout(Duration::from_millis(50)).is_err(),
            "nothing changed yet"
        );
        for _ in 0..10 {
            std::fs::write(wal_path(&db), b"frames").unwrap();
        }
        rings
            .recv_timeout(Duration::from_secs(5))
            .expect("the change rings");
        assert!(rang.swap(false, Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(50));
        let pending = rings.try_iter().count();
        assert!(
            pending <= 1,
            "ten writes ring at most once more, not {pending}"
        );
        watch.set(false).unwrap();
        std::fs::write(wal_path(&db), b"more frames").unwrap();
        assert!(
            rings.recv_timeout(Duration::from_millis(100)).is_err(),
            "off: no ring"
        );
        watch.set(true).unwrap();
        std::fs::write(wal_path(&db), b"frames again").unwrap();
        rings
            .recv_timeout(Duration::from_secs(5))
            .expect("on again: the change rings");
    }

    #[test]
    fn a_missing_wal_cannot_be_watched() {
        let dir = tempfile::tempdir().unwrap();
        let (bell, _rings) = mpsc::sync_channel(1);
        let rang = Arc::new(AtomicBool::new(false));
        assert!(watch_wal(&dir.path().join("none.db"), bell, rang).is_err());
    }
}
