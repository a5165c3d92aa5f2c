//! The writer thread: every write of one backend goes through it, and the
//! writes that queue up while a commit is syncing share the next commit
//! (group commit). Each caller hears back only after the commit that holds
//! its write succeeded.
//!
//! One exception: a caller of the blocking facade, whose thread waits for
//! its write anyway, runs the write on its own thread when no other write
//! is waiting or running (saving the two thread wake-ups of a hand-over);
//! any write that comes meanwhile waits for the connection and goes with
//! the next batch as usual.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::config::BusyHandler;
use super::error::db_error;
use crate::backend::caller_may_write;
use crate::error::{DatabaseError, DatabaseErrorKind, Error, Result};

/// The most writes that share one commit.
const MAX_BATCH: usize = 512;

/// How long a caller looks for its answer before it waits to be woken,
/// when no commit syncs.
const SPIN: Duration = Duration::from_micros(60);

/// How long the writer thread looks for the next write after a commit
/// before it sleeps, when no commit syncs: a caller that writes again as
/// soon as it hears back (a loop of single enqueues) finds it awake.
const LINGER: Duration = Duration::from_micros(100);

/// The next write: one already waiting, one arriving within `linger`, or
/// whenever one comes. `None` once every handle is gone.
fn next_write(
    inbox: &mpsc::Receiver<Box<dyn WriteRequest>>,
    linger: Duration,
) -> Option<Box<dyn WriteRequest>> {
    let until = Instant::now() + linger;
    loop {
        match inbox.try_recv() {
            Ok(write) => return Some(write),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if Instant::now() < until => std::hint::spin_loop(),
            Err(mpsc::TryRecvError::Empty) => return inbox.recv().ok(),
        }
    }
}

/// One write waiting for the writer thread.
trait WriteRequest: Send {
    /// Whether the caller's acknowledgement promises durability. Claims do
    /// not: a claim lost in a power cut only means the task runs again.
    fn durable(&self) -> bool;
    /// Runs the write inside the open transaction; returns whether it
    /// succeeded and what to tell the caller once the commit is known.
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Pending>;
    /// Tells the caller that the write was never attempted.
    fn abort(self: Box<Self>, error: Error);
}

/// A write that ran and awaits the outcome of its commit.
trait Pending: Send {
    fn succeeded(&self) -> bool;
    /// Whether the write failed for lack of space.
    fn out_of_space(&self) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), &Error>);
}

struct ClosureWrite<T, F> {
    op: F,
    durable: bool,
    reply: oneshot::Sender<Result<T>>,
}

struct PendingReply<T> {
    result: Result<T>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> WriteRequest for ClosureWrite<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn durable(&self) -> bool {
        self.durable
    }

    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Pending> {
        let ClosureWrite { op, reply, .. } = *self;
        let result = catch_unwind(AssertUnwindSafe(|| op(conn))).unwrap_or_else(|_| {
            Err(Error::Database(DatabaseError::new(
                DatabaseErrorKind::Other,
                "a write panicked inside the writer thread",
                None,
            )))
        });
        Box::new(PendingReply { result, reply })
    }

    fn abort(self: Box<Self>, error: Error) {
        let _ = self.reply.send(Err(error));
    }
}

impl<T: Send> Pending for PendingReply<T> {
    fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    fn out_of_space(&self) -> bool {
        self.result
            .as_ref()
            .is_err_and(|e| e.database_kind() == Some(DatabaseErrorKind::Full))
    }

    fn finish(self: Box<Self>, commit: Result<(), &Error>) {
        let result = match commit {
            Ok(()) => self.result,
            Err(error) if self.result.is_ok() => Err(copy_error(error)),
            // The write failed on its own; its error says more.
            Err(_) => self.result,
        };
        let _ = self.reply.send(result);
    }
}

/// A commit failure is reported to every caller of the batch.
fn copy_error(error: &Error) -> Error {
    match error {
        Error::Database(e) => Error::Database(e.clone()),
        other => Error::Database(DatabaseError::new(
            DatabaseErrorKind::Other,
            other.to_string(),
            None,
        )),
    }
}

/// The handle to a writer thread; the thread ends when the last handle is
/// dropped, after finishing what was sent.
#[derive(Debug)]
pub(crate) struct Writer {
    requests: mpsc::Sender<Box<dyn WriteRequest>>,
    /// The connection and what the writes left on it; held by whoever
    /// runs writes on it (the writer thread, or a blocking caller).
    state: Arc<Mutex<WriterState>>,
    /// Writes sent to the writer thread and not yet finished.
    queued: Arc<AtomicUsize>,
    /// Whether the connection holds the file's write lock now.
    locked: Arc<AtomicBool>,
    levels: SyncLevels,
    /// Whether callers and the thread look for work before sleeping: only
    /// when no commit syncs, so that a write takes about as long as a
    /// thread's sleep and wake-up (see [`SPIN`] and [`LINGER`]).
    spin: bool,
}

/// The writer's connection and what earlier writes left on it.
struct WriterState {
    conn: Connection,
    /// Set while the connection holds the file's write lock (from its
    /// `BEGIN IMMEDIATE` to the end of its commit): no other connection
    /// writes the WAL meanwhile.
    locked: Arc<AtomicBool>,
    /// How long a write waits for other connections' write lock.
    busy_timeout: Duration,
    /// The `synchronous` level the connection is at.
    level: &'static str,
    /// Set when a write failed for lack of space, until one succeeds: each
    /// batch first gives the WAL's space back, in case space has returned.
    out_of_space: bool,
}

impl std::fmt::Debug for WriterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterState")
            .field("level", &self.level)
            .field("out_of_space", &self.out_of_space)
            .finish_non_exhaustive()
    }
}

/// The `synchronous` level of a batch: the configured one when any of its
/// writes must be durable, `NORMAL` (no sync at commit; still safe
/// against a crash of the process) when none must.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SyncLevels {
    pub(crate) durable: &'static str,
    pub(crate) relaxed: &'static str,
}

impl Writer {
    /// Starts the writer thread of `conn`, which waits up to
    /// `busy_timeout` for other connections' write lock.
    pub(crate) fn spawn(
        conn: Connection,
        name: String,
        levels: SyncLevels,
        busy_timeout: Duration,
    ) -> Result<Self> {
        let (requests, inbox) = mpsc::channel::<Box<dyn WriteRequest>>();
        let spin = levels.durable == levels.relaxed;
        let locked = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(WriterState {
            conn,
            locked: Arc::clone(&locked),
            busy_timeout,
            level: levels.durable,
            out_of_space: false,
        }));
        let queued = Arc::new(AtomicUsize::new(0));
        let thread_state = Arc::clone(&state);
        let thread_queued = Arc::clone(&queued);
        thread::Builder::new()
            .name(name)
            .spawn(move || run(&thread_state, &thread_queued, inbox, levels, spin))
            .map_err(|e| {
                Error::Database(DatabaseError::new(
                    DatabaseErrorKind::Other,
                    format!("could not start the SQLite writer thread: {e}"),
                    None,
                ))
            })?;
        Ok(Writer {
            requests,
            locked,
            state,
            queued,
            levels,
            spin,
        })
    }

    /// Set while the writer's connection holds the file's write lock: a
    /// change of the WAL meanwhile is this writer's own.
    pub(crate) fn holds_lock(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.locked)
    }

    /// Runs `op` in the next commit and returns its result once committed.
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.send(op, true).await
    }

    /// Like [`write`](Self::write), for writes whose loss in a power cut
    /// is harmless (claims): their commit need not wait for the disk.
    pub(crate) async fn write_relaxed<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.send(op, false).await
    }

    async fn send<T, F>(&self, op: F, durable: bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let op = match self.run_here(op, durable) {
            Ok(result) => return result,
            Err(op) => op,
        };
        let (reply, mut answer) = oneshot::channel();
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self
            .requests
            .send(Box::new(ClosureWrite { op, durable, reply }))
            .is_err()
        {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Closed);
        }
        // A write without a sync at commit takes tens of microseconds,
        // about what it costs to put this thread to sleep and wake it
        // again: then look for the answer for a little while first,
        // letting other tasks run in between, before waiting for it.
        let until = Instant::now() + if self.spin { SPIN } else { Duration::ZERO };
        while Instant::now() < until {
            match answer.try_recv() {
                Ok(result) => return result,
                Err(oneshot::error::TryRecvError::Closed) => return Err(Error::Closed),
                Err(oneshot::error::TryRecvError::Empty) => tokio::task::yield_now().await,
            }
        }
        answer.await.map_err(|_| Error::Closed)?
    }

    /// Runs `op` in a commit of its own on this thread, when this thread
    /// is a blocking caller's (see [`caller_may_write`]) and no other
    /// write waits or runs; gives `op` back otherwise.
    fn run_here<T, F>(&self, op: F, durable: bool) -> std::result::Result<Result<T>, F>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        if !caller_may_write() || self.queued.load(Ordering::SeqCst) > 0 {
            return Err(op);
        }
        let Ok(mut state) = self.state.try_lock() else {
            return Err(op);
        };
        let (reply, mut answer) = oneshot::channel();
        let write: Box<dyn WriteRequest> = Box::new(ClosureWrite { op, durable, reply });
        // This thread's busy handler, for the wait on other processes.
        let _busy = BusyHandler::here(&state.conn, state.busy_timeout);
        run_batch_on(&mut state, vec![write], self.levels);
        drop(state);
        Ok(answer.try_recv().unwrap_or(Err(Error::Closed)))
    }
}

/// Moves every page of the WAL into the database file and truncates the
/// WAL to nothing, giving its space back: after a write failed for lack of
/// space, the WAL of a long-running process could otherwise keep all the
/// space freed later, and every write would fail for good.
fn give_back_wal_space(conn: &Connection) {
    let checkpoint = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
    });
    match checkpoint {
        Ok((0, _)) => tracing::info!("the SQLite WAL was checkpointed and truncated after a full disk"),
        Ok((_, pages)) => tracing::warn!(pages, "the SQLite WAL could not be truncated after a full disk: another connection is reading; trying again with the next write"),
        Err(error) => tracing::warn!(%error, "the SQLite WAL could not be checkpointed after a full disk; trying again with the next write"),
    }
}

fn run(
    state: &Mutex<WriterState>,
    queued: &AtomicUsize,
    inbox: mpsc::Receiver<Box<dyn WriteRequest>>,
    levels: SyncLevels,
    spin: bool,
) {
    let linger = if spin { LINGER } else { Duration::ZERO };
    let _busy = {
        let state = lock(state);
        BusyHandler::here(&state.conn, state.busy_timeout)
    };
    while let Some(first) = next_write(&inbox, linger) {
        // Wait for a blocking caller's write on its own thread to end.
        let mut state = lock(state);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let n = batch.len();
        run_batch_on(&mut state, batch, levels);
        drop(state);
        queued.fetch_sub(n, Ordering::SeqCst);
    }
}

fn lock(state: &Mutex<WriterState>) -> MutexGuard<'_, WriterState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `batch` in one transaction at the sync level it needs, giving the
/// WAL's space back before and after as a lack of space calls for.
fn run_batch_on(state: &mut WriterState, batch: Vec<Box<dyn WriteRequest>>, levels: SyncLevels) {
    let wanted = if batch.iter().any(|write| write.durable()) {
        levels.durable
    } else {
        levels.relaxed
    };
    if wanted != state.level {
        match state
            .conn
            .execute_batch(&format!("PRAGMA synchronous = {wanted}"))
        {
            Ok(()) => state.level = wanted,
            Err(error) => tracing::warn!(%error, "could not change the sync level"),
        }
    }
    if state.out_of_space {
        give_back_wal_space(&state.conn);
    }
    let full = run_batch(&state.conn, batch, &state.locked);
    if full {
        give_back_wal_space(&state.conn);
    }
    state.out_of_space = full;
}

fn is_full(error: &Error) -> bool {
    error.database_kind() == Some(DatabaseErrorKind::Full)
}

/// Runs a batch in one transaction; returns whether a write or the commit
/// failed for lack of space.
fn run_batch(conn: &Connection, batch: Vec<Box<dyn WriteRequest>>, locked: &AtomicBool) -> bool {
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE").map_err(db_error) {
        for write in batch {
            write.abort(copy_error(&error));
        }
        return is_full(&error);
    }
    locked.store(true, Ordering::SeqCst);
    let full = run_in_transaction(conn, batch);
    locked.store(false, Ordering::SeqCst);
    full
}

/// Runs the writes of a batch inside the open transaction, and commits.
fn run_in_transaction(conn: &Connection, batch: Vec<Box<dyn WriteRequest>>) -> bool {
    let single = batch.len() == 1;
    let mut pending = Vec::with_capacity(batch.len());
    let mut writes = batch.into_iter();
    for write in writes.by_ref() {
        // A lone write needs no savepoint: if it fails, the whole
        // transaction is rolled back below.
        let done = if single {
            write.run(conn)
        } else {
            if let Err(error) = conn
                .execute_batch("SAVEPOINT taskq_write")
                .map_err(db_error)
            {
                write.abort(error);
                continue;
            }
            let done = write.run(conn);
            let end = if done.succeeded() {
                "RELEASE taskq_write"
            } else {
                "ROLLBACK TO taskq_write; RELEASE taskq_write"
            };
            if !conn.is_autocommit() {
                let _ = conn.execute_batch(end);
            }
            done
        };
        pending.push(done);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (I/O error, disk
            // full): nothing of this batch is committed.
            break;
        }
    }
    let outcome = if conn.is_autocommit() {
        Err(Error::Database(DatabaseError::new(
            DatabaseErrorKind::Other,
            "the transaction was rolled back by SQLite",
            None,
        )))
    } else if single && !pending[0].succeeded() {
        conn.execute_batch("ROLLBACK").map_err(db_error)
    } else {
        crate::failpoint::hit("before-commit");
        conn.execute_batch("COMMIT")
            .map_err(db_error)
            .inspect_err(|_| {
                let _ = conn.execute_batch("ROLLBACK");
            })
    };
    let full = outcome.as_ref().is_err_and(is_full) || pending.iter().any(|p| p.out_of_space());
    for done in pending {
        done.finish(outcome.as_ref().map(|_| ()));
    }
    if let Err(error) = &outcome {
        for write in writes {
            write.abort(copy_error(error));
        }
    }
    full
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CallerWrites;

    fn writer(dir: &tempfile::TempDir) -> Writer {
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (thread TEXT)")
            .unwrap();
        let levels = SyncLevels {
            durable: "FULL",
            relaxed: "NORMAL",
        };
        Writer::spawn(conn, "test-writer".into(), levels, Duration::from_secs(5)).unwrap()
    }

    fn here() -> String {
        format!("{:?}", thread::current().id())
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_blocking_caller_writes_on_its_own_thread_and_others_through_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let record = |conn: &Connection| {
            conn.execute("INSERT INTO t VALUES (?1)", [here()])
                .map_err(db_error)?;
            Ok(here())
        };
        let plain = block_on(writer.write(record)).unwrap();
        assert_ne!(plain, here(), "a caller not marked: the writer thread");
        // The writer thread answers before it lets go of the connection;
        // a write that comes meanwhile goes through it, as it should.
        let idle = Instant::now() + Duration::from_secs(5);
        while writer.queued.load(Ordering::SeqCst) > 0 || writer.state.try_lock().is_err() {
            assert!(Instant::now() < idle, "the writer thread stays busy");
            thread::sleep(Duration::from_millis(1));
        }
        let _allowed = CallerWrites::allow();
        let inline = block_on(writer.write(record)).unwrap();
        assert_eq!(inline, here(), "a blocking caller: its own thread");
    }

    #[test]
    fn concurrent_blocking_callers_all_commit() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Arc::new(writer(&dir));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let writer = Arc::clone(&writer);
                thread::spawn(move || {
                    let _allowed = CallerWrites::allow();
                    let mut inline = 0;
                    for _ in 0..200 {
                        let ran_on = block_on(writer.write(|conn| {
                            conn.execute("INSERT INTO t VALUES (?1)", [here()])
                                .map_err(db_error)?;
                            Ok(here())
                        }))
                        .unwrap();
                        inline += usize::from(ran_on == here());
                    }
                    inline
                })
            })
            .collect();
        let inline: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let rows: i64 = block_on(writer.write(|conn| {
            conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0))
                .map_err(db_error)
        }))
        .unwrap();
        assert_eq!(rows, 1600);
        assert!(
            inline < 1600,
            "contended writes went through the writer: {inline} inline"
        );
    }
}
