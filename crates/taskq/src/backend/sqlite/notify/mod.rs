//! Wake-ups across processes: a thread that, when another connection
//! committed, wakes the waiters of actions with tasks ready and tells the
//! handlers of this process whose task's cancellation was asked for.
//!
//! While a waiter waits idle, the thread learns of commits from the
//! operating system's notifications on the WAL ([`files`]) and confirms
//! each with the file's data version (`PRAGMA data_version`, a read of the
//! shared WAL index that touches no table), so a notification that was not
//! a commit costs one cheap read. Where notifications are unavailable it
//! reads the data version every [`POLL_EVERY`] instead. While no waiter
//! waits idle (every worker busy), notifications are off, and only running
//! tasks' cancellations are looked up, every [`POLL_EVERY`].

mod files;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::config::FileWatch;
use super::pool::ReadPool;
use super::statements;
use crate::backend::Waiters;
use crate::clock::Clock;
use crate::micros;
use files::WalWatch;

/// How often the watch looks at the data version without notifications.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// How often the watch looks anyway while notifications work: a safety
/// net, and how it finds out that notifications miss commits.
const SAFETY_LOOK_EVERY: Duration = Duration::from_millis(250);

/// The least time between two sweeps (the look for ready tasks and asked
/// cancellations after a commit): a burst of commits costs at most a
/// thousand sweeps a second.
const MIN_GAP: Duration = Duration::from_millis(1);

/// How long after a notification the watch keeps reading the data version
/// until it moves: a commit changes the WAL before it syncs it, and
/// changes the data version only after. Every [`SETTLE_FAST`] for the
/// first [`SETTLE_FAST_FOR`] (a sync takes a millisecond or two), then
/// every [`MIN_GAP`]. When the look at the notification already saw the
/// version move, that may have been the commit announced or an earlier
/// one: the watch reads on for [`SETTLE_SHORT`] only, until it moves
/// again. A read of the data version costs about a microsecond.
const SETTLE_FOR: Duration = Duration::from_millis(50);
const SETTLE_SHORT: Duration = Duration::from_millis(5);
const SETTLE_FAST_FOR: Duration = Duration::from_millis(3);
const SETTLE_FAST: Duration = Duration::from_micros(100);

/// Safety looks in a row that found a commit no notification announced
/// before the watch stops trusting notifications and polls.
const UNANNOUNCED_LIMIT: u32 = 2;

/// How the watch learns that someone may have committed.
enum Source {
    /// Notifications on the WAL; `safety`: with looks of its own every
    /// [`SAFETY_LOOK_EVERY`] ([`FileWatch::Auto`]).
    Files { watch: WalWatch, safety: bool },
    /// A look every [`POLL_EVERY`] while a waiter waits idle.
    Poll,
    /// Nothing: notifications only were asked for, and are unavailable.
    Deaf,
}

/// Why the watch woke up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wake {
    /// A notification on the WAL.
    Announced,
    /// A waiter began to wait idle, or the notifications were turned on:
    /// a commit made meanwhile was not looked at for it.
    Waiter,
    /// A notification while this backend's own writer held the write
    /// lock: its own change (see [`watch`]).
    Own,
    /// Time to look: a poll, a safety look, or settling.
    Look,
    /// Nothing to do but see whether the queue is still there.
    Quiet,
}

/// What the waiters need of the watch now.
#[derive(Default)]
struct Need {
    /// Some waiter waits idle.
    idle: bool,
    /// Some task runs (its cancellation is looked up).
    running: bool,
}

/// The watch's state between looks.
struct Watch {
    source: Source,
    /// Rung by the notifications and when a waiter begins to wait idle.
    bell: Receiver<()>,
    /// Set by the notifications only.
    rang: Arc<AtomicBool>,
    /// After a notification: since when the watch reads the data version
    /// again and again, and for how long at most (see [`SETTLE_FOR`]).
    settle_since: Option<Instant>,
    settle_for: Duration,
    /// Safety looks in a row that found an unannounced commit.
    unannounced: u32,
    /// When the last sweep began.
    last_sweep: Instant,
    /// The waiters' count of idle beginnings at the last look.
    idle_seen: u64,
}

impl Watch {
    fn start(readers: &ReadPool, mode: FileWatch, waiters: &dyn Waiters) -> Self {
        let (ring, bell) = mpsc::sync_channel(1);
        let rang = Arc::new(AtomicBool::new(false));
        let waiter_ring = ring.clone();
        waiters.on_idle(Box::new(move || {
            !matches!(
                waiter_ring.try_send(()),
                Err(mpsc::TrySendError::Disconnected(()))
            )
        }));
        let path = readers.path.display();
        let source = match mode {
            FileWatch::Poll => {
                tracing::info!(%path, "taskq watches the SQLite file for other processes' tasks by polling every 20 ms (file notifications are turned off)");
                Source::Poll
            }
            FileWatch::Auto | FileWatch::NotificationsOnly => {
                match files::watch_wal(&readers.path, ring, Arc::clone(&rang)) {
                    Ok(watch) => {
                        tracing::info!(%path, notifications = files::kind(), "taskq watches the SQLite file for other processes' tasks through file notifications");
                        Source::Files {
                            watch,
                            safety: mode == FileWatch::Auto,
                        }
                    }
                    Err(error) if mode == FileWatch::Auto => {
                        tracing::warn!(%path, %error, "file notifications are unavailable; taskq polls the SQLite file every 20 ms for other processes' tasks");
                        Source::Poll
                    }
                    Err(error) => {
                        tracing::warn!(%path, %error, "file notifications are unavailable and polling is turned off: other processes' tasks wait for the workers' poll");
                        Source::Deaf
                    }
                }
            }
        };
        Watch {
            source,
            bell,
            rang,
            settle_since: None,
            settle_for: SETTLE_FOR,
            unannounced: 0,
            last_sweep: Instant::now(),
            idle_seen: waiters.idle_began(),
        }
    }

    /// Waits for the next reason to wake.
    fn wait(&mut self, need: &Need) -> Wake {
        let now = Instant::now();
        let files_on = matches!(&self.source, Source::Files { watch, .. } if watch.is_on());
        let (timeout, on_timeout) = match (&self.source, self.settle_since) {
            (_, Some(since)) if now < since + SETTLE_FAST_FOR => (SETTLE_FAST, Wake::Look),
            (_, Some(_)) => (MIN_GAP, Wake::Look),
            (Source::Poll, None) if need.idle => (POLL_EVERY, Wake::Look),
            (Source::Files { safety: true, .. }, None) if files_on => {
                (SAFETY_LOOK_EVERY, Wake::Look)
            }
            // Cancellations of running tasks, while nobody waits idle.
            _ if need.running => (POLL_EVERY, Wake::Look),
            _ => (SAFETY_LOOK_EVERY, Wake::Quiet),
        };
        match self.bell.recv_timeout(timeout) {
            Ok(()) if self.rang.swap(false, Ordering::SeqCst) => Wake::Announced,
            Ok(()) => Wake::Waiter,
            Err(RecvTimeoutError::Timeout) => on_timeout,
            // Every ringer is gone: so is the queue.
            Err(RecvTimeoutError::Disconnected) => {
                thread::sleep(timeout);
                Wake::Quiet
            }
        }
    }

    /// Turns the notifications on while a waiter waits idle, off while
    /// none does; returns whether they were just turned on.
    fn follow(&mut self, need: &Need) -> bool {
        let Source::Files { watch, .. } = &mut self.source else {
            return false;
        };
        let was_on = watch.is_on();
        match watch.set(need.idle) {
            Ok(()) => !was_on && need.idle,
            Err(error) => {
                tracing::warn!(%error, "the file notifications could not be turned on again; taskq polls the SQLite file every 20 ms for other processes' tasks");
                self.source = Source::Poll;
                true
            }
        }
    }

    /// Takes the rings that came since the wake (the look that follows
    /// covers them); returns whether a notification was among them.
    fn take_rings(&mut self) -> bool {
        while self.bell.try_recv().is_ok() {}
        self.rang.swap(false, Ordering::SeqCst)
    }

    /// Keeps the gap between two sweeps.
    fn pace_sweep(&mut self) {
        let since = self.last_sweep.elapsed();
        if since < MIN_GAP {
            thread::sleep(MIN_GAP - since);
        }
        self.last_sweep = Instant::now();
    }

    /// Learns from a look: `changed` whether the data version moved.
    fn looked(&mut self, wake: Wake, changed: bool) {
        let now = Instant::now();
        match wake {
            // The commit announced may still be syncing: read the version
            // again until it moves. So may one made just before the
            // notifications were turned on.
            Wake::Announced | Wake::Waiter => {
                if changed && wake == Wake::Announced {
                    self.unannounced = 0;
                }
                self.settle_since = Some(now);
                self.settle_for = if changed { SETTLE_SHORT } else { SETTLE_FOR };
            }
            Wake::Own => {}
            // Moved while settling: the commit announced, or a later one,
            // which has a notification of its own.
            _ if self.settle_since.is_some() && changed => self.settle_since = None,
            _ if self.settle_since.is_some() => {
                let over = self
                    .settle_since
                    .is_some_and(|since| now >= since + self.settle_for);
                if over {
                    self.settle_since = None;
                }
            }
            _ if changed => self.unannounced_commit(),
            _ => {}
        }
    }

    /// A safety look found a commit that no notification announced:
    /// after [`UNANNOUNCED_LIMIT`] in a row, notifications are not to be
    /// trusted on this file system.
    fn unannounced_commit(&mut self) {
        let on = matches!(&self.source, Source::Files { watch, safety: true } if watch.is_on());
        if !on {
            return;
        }
        self.unannounced += 1;
        if self.unannounced >= UNANNOUNCED_LIMIT {
            tracing::warn!("the file notifications miss commits; taskq polls the SQLite file every 20 ms for other processes' tasks");
            self.source = Source::Poll;
        }
    }
}

/// Wakes the waiters of actions that have tasks ready after another
/// connection committed, until the backend that owns `readers`, or every
/// queue that shares `waiters`, is gone.
pub(super) fn watch(
    readers: Weak<ReadPool>,
    clock: Clock,
    waiters: Weak<dyn Waiters>,
    mode: FileWatch,
    writing: Arc<AtomicBool>,
) {
    let (Some(pool), Some(first)) = (readers.upgrade(), waiters.upgrade()) else {
        return;
    };
    let conn = match pool.take() {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%error, "cannot watch the SQLite file for other processes' tasks; waiters poll");
            return;
        }
    };
    let mut watch = Watch::start(&pool, mode, &*first);
    drop((pool, first));
    let mut seen: Option<i64> = None;
    let mut need = Need::default();
    loop {
        let wake = watch.wait(&need);
        let Some(waiters) = waiters.upgrade() else {
            return;
        };
        if readers.strong_count() == 0 {
            return;
        }
        need = Need {
            idle: !waiters.waited().is_empty(),
            running: !waiters.running().is_empty(),
        };
        let turned_on = watch.follow(&need);
        let began = waiters.idle_began();
        let new_waiter = std::mem::replace(&mut watch.idle_seen, began) != began;
        let rang = watch.take_rings() || wake == Wake::Announced;
        let wake = match wake {
            _ if new_waiter || turned_on => Wake::Waiter,
            // While this backend's writer holds the write lock, the WAL
            // changes are its own, and any other commit before them is
            // visible already: one look covers it, nothing to wait for.
            _ if rang && writing.load(Ordering::SeqCst) => Wake::Own,
            _ if rang => Wake::Announced,
            Wake::Waiter => continue,
            Wake::Quiet => continue,
            wake => wake,
        };
        let version = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut statement| statement.query_row([], |row| row.get::<_, i64>(0)));
        let changed = match version {
            Ok(version) => seen.replace(version) != Some(version),
            Err(error) => {
                tracing::debug!(%error, "could not read the SQLite data version");
                false
            }
        };
        watch.looked(wake, changed);
        if changed || wake == Wake::Waiter {
            watch.pace_sweep();
            sweep(&conn, &clock, &*waiters);
        }
    }
}

/// After a commit: wakes the waiters whose action has tasks ready, and
/// tells handlers whose task's cancellation was asked for.
fn sweep(conn: &Connection, clock: &Clock, waiters: &dyn Waiters) {
    for action in waiters.waited() {
        // An error cannot tell: let the waiters look for themselves.
        let ready = statements::count_ready(conn, micros::from_time(clock.now()), &action);
        if ready.is_err() || ready.is_ok_and(|n| n > 0) {
            waiters.wake(&action);
        }
    }
    // An error cannot tell either: the heartbeat asks again.
    for id in waiters.running() {
        if statements::cancel_asked(conn, id).unwrap_or(false) {
            waiters.cancel_requested(id);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::{Duration, Instant};

    /// The watch threads of this process (thread names are cut to 15
    /// bytes).
    fn watch_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim_end() == "taskq-sqlite-wa")
            .count()
    }

    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_dropped_queue_ends_its_watch_though_another_on_the_file_lives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let stays = crate::Queue::open_sqlite(&path).await.unwrap();
        let goes = crate::Queue::open_sqlite(&path).await.unwrap();
        assert_eq!(watch_threads(), 0, "no watch before a waiter");
        let none = goes.claim_wait("a", Duration::from_millis(50)).await;
        assert!(none.unwrap().is_none());
        until("a waiter starts the watch", || watch_threads() == 1).await;
        drop(goes);
        until("the watch of a dropped queue ends", || watch_threads() == 0).await;
        stays.enqueue("a", &1).await.unwrap();
    }
}
