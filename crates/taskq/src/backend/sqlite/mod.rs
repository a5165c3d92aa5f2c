//! The embedded SQLite backend: one database file, no server.
//!
//! Every write of a [`SqliteBackend`] goes through one writer thread that
//! shares commits between concurrent callers (group commit); reads run on
//! a small pool of connections of their own, so `len`, `stats` and `list`
//! never wait for the write lock. Other processes can open the same file:
//! SQLite's write lock, taken at the start of each transaction, and a busy
//! timeout keep them in line.
//!
//! # Transactional enqueue
//!
//! An application that keeps its own data in the same SQLite file can
//! enqueue inside its own transaction, so the task exists if and only if
//! its data commits:
//!
//! Use the `rusqlite` that taskq re-exports ([`sqlite::rusqlite`](rusqlite)),
//! or depend on the same version (two versions of its bundled SQLite
//! cannot be linked into one program):
//!
//! ```
//! use taskq::sqlite::rusqlite::{Connection, TransactionBehavior};
//! use taskq::sqlite::{self, SqliteConfig};
//! use taskq::NewTask;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("app.db");
//! let mut conn = Connection::open(&path)?;
//! sqlite::configure_connection(&conn, &SqliteConfig::default())?;
//! sqlite::migrate_in(&conn)?;
//! conn.execute_batch("CREATE TABLE users (name TEXT NOT NULL)")?;
//!
//! let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
//! tx.execute("INSERT INTO users (name) VALUES (?1)", ["ada"])?;
//! let id = sqlite::enqueue_in(&tx, &NewTask::json("welcome-email", &"ada")?)?;
//! tx.commit()?; // the user and the task commit together
//! # assert!(id.0 > 0);
//! # Ok(())
//! # }
//! ```

mod migrate;
mod store;
mod writer;

/// The `rusqlite` crate taskq is built with, for transactional enqueues
/// on connections of your own without matching its version.
pub use rusqlite;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::backend::{Backend, ExpiryBackoff};
use crate::clock::Clock;
use crate::error::{DatabaseError, DatabaseErrorKind, Error, Result};
use crate::lease::{Lease, LeaseRef};
use crate::options::{validate_duration, ListOptions};
use crate::state::State;
use crate::task::{ActionStats, NewTask, Task, TaskId};
use crate::wakeup::Wakeups;

use store::{db_error, now_micros, to_micros};
use writer::Writer;

pub use migrate::LATEST_VERSION as SCHEMA_VERSION;

/// What an acknowledged write survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// A crash of the process *and* a power loss or operating-system crash:
    /// every commit is synced to disk (`synchronous = FULL` in WAL mode).
    /// The default.
    #[default]
    PowerLoss,
    /// A crash of the process only: commits reach the operating system but
    /// are synced at checkpoints, so a power loss can undo the last few
    /// (`synchronous = NORMAL`). Much faster on slow disks. Never corrupts
    /// the file.
    ProcessCrash,
}

/// Settings of a [`SqliteBackend`]. Every field has a default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteConfig {
    /// What an acknowledged write survives. Default: [`Durability::PowerLoss`].
    pub durability: Durability,
    /// How long a write waits for another connection's write lock before
    /// failing with a busy error. Default: 10 seconds.
    pub busy_timeout: Duration,
    /// Create or upgrade the schema when opening. Default: `true`. When
    /// `false` and the schema is older than this build needs (or missing),
    /// operations fail with [`Error::SchemaTooOld`] until it is migrated.
    pub migrate: bool,
    /// Create the file when it does not exist. Default: `true`. When
    /// `false`, opening a missing file fails with a
    /// [`DatabaseErrorKind::CannotOpen`] error.
    pub create_file: bool,
    /// Read connections kept open for `len`, `stats`, `get` and `list`.
    /// Default: 4.
    pub read_connections: usize,
    /// Where not-before times, lease ends and backoffs read the time.
    /// Default: [`Clock::System`]; tests can pass a
    /// [`ManualClock`](crate::ManualClock).
    pub clock: Clock,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            durability: Durability::default(),
            busy_timeout: Duration::from_secs(10),
            migrate: true,
            create_file: true,
            read_connections: 4,
            clock: Clock::System,
        }
    }
}

impl SqliteConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        validate_duration("busy_timeout", self.busy_timeout, true)?;
        if self.read_connections == 0 {
            return Err(Error::invalid("read_connections", "must be at least 1"));
        }
        Ok(())
    }
}

/// Prepares a connection the way taskq needs it: WAL journal, the sync
/// level of `config.durability`, and `config.busy_timeout`. Call it on
/// connections of your own that enqueue or complete tasks in the same file.
pub fn configure_connection(conn: &Connection, config: &SqliteConfig) -> Result<()> {
    config.validate()?;
    conn.busy_timeout(config.busy_timeout).map_err(db_error)?;
    let mode = switch_to_wal(conn, config.busy_timeout)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Database(DatabaseError::new(
            DatabaseErrorKind::Other,
            format!("could not switch the journal to WAL mode (it is {mode})"),
            None,
        )));
    }
    let synchronous = sync_level(config.durability);
    conn.execute_batch(&format!("PRAGMA synchronous = {synchronous}"))
        .map_err(db_error)
}

/// Switches the file to WAL mode. The switch needs a lock that SQLite does
/// not wait for through the busy handler, so when many processes open a
/// new file at once, it is retried here until the busy timeout runs out.
fn switch_to_wal(conn: &Connection, busy_timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + busy_timeout;
    loop {
        let result = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| {
                row.get::<_, String>(0)
            })
            .map_err(db_error);
        match result {
            Err(error)
                if error.database_kind() == Some(DatabaseErrorKind::Busy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(1 + fastrand::u64(0..10)));
            }
            other => return other,
        }
    }
}

/// SQLite's `synchronous` setting for a durability.
fn sync_level(durability: Durability) -> &'static str {
    match durability {
        Durability::PowerLoss => "FULL",
        Durability::ProcessCrash => "NORMAL",
    }
}

/// Creates or upgrades taskq's tables on the caller's connection, in the
/// caller's transaction if one is open (otherwise in one of its own).
pub fn migrate_in(conn: &Connection) -> Result<()> {
    if conn.is_autocommit() {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db_error)?;
        let result = migrate::migrate(conn);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        conn.execute_batch(end).map_err(db_error)?;
        result
    } else {
        migrate::migrate(conn)
    }
}

/// Enqueues a task on the caller's connection, inside the caller's
/// transaction if one is open: the task commits or rolls back with it.
/// Start that transaction with `BEGIN IMMEDIATE`
/// ([`TransactionBehavior::Immediate`]) so it takes the write lock up front.
pub fn enqueue_in(conn: &Connection, task: &NewTask) -> Result<TaskId> {
    task.validate()?;
    store::insert(conn, now_micros(), std::slice::from_ref(task), None).map(|ids| ids[0])
}

/// Enqueues many tasks on the caller's connection, all or none.
pub fn enqueue_many_in(conn: &Connection, tasks: &[NewTask]) -> Result<Vec<TaskId>> {
    tasks.iter().try_for_each(NewTask::validate)?;
    store::in_savepoint(conn, |conn| store::insert(conn, now_micros(), tasks, None))
}

/// Completes a leased task on the caller's connection, with follow-up
/// tasks, inside the caller's transaction: the application's own writes,
/// the completion and the follow-ups commit together or not at all. The
/// lease is fenced as in [`Lease::complete`]: if it was lost, this returns
/// [`Error::LeaseLost`] and writes nothing.
pub fn complete_in(
    conn: &Connection,
    lease: &Lease,
    follow_ups: Vec<NewTask>,
) -> Result<Vec<TaskId>> {
    let follow_ups = lease.prepare_follow_ups(follow_ups)?;
    let retain = lease.queue().config().retain_completed;
    store::in_savepoint(conn, |conn| {
        store::complete(
            conn,
            now_micros(),
            lease.lease_ref(),
            &follow_ups,
            retain,
            None,
        )
    })
}

fn open_connection(path: &Path, config: &SqliteConfig) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if config.create_file {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(db_error)?;
    configure_connection(&conn, config)?;
    Ok(conn)
}

/// Says what is missing when the file cannot be opened because it, or its
/// directory, does not exist (SQLite only says "unable to open").
fn check_openable(path: &Path, create: bool) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let cannot_open = |message: String| {
        Err(Error::Database(DatabaseError::new(
            DatabaseErrorKind::CannotOpen,
            message,
            None,
        )))
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return cannot_open(format!(
            "the directory {} does not exist (taskq creates the database file, not its directory)",
            dir.display()
        ));
    }
    if !create {
        return cannot_open(format!(
            "there is no SQLite database at {} (it is created by a queue that may create it, or by `taskq migrate`)",
            path.display()
        ));
    }
    Ok(())
}

/// Idle read connections, opened on demand.
#[derive(Debug)]
struct ReadPool {
    path: PathBuf,
    config: SqliteConfig,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn take(&self) -> Result<Connection> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = open_connection(&self.path, &self.config)?;
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(db_error)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.config.read_connections {
            idle.push(conn);
        }
    }
}

/// How often a waiting queue looks whether another connection (another
/// process, say) committed: `PRAGMA data_version`, a read of the shared
/// WAL index that touches no table.
const WATCH_EVERY: Duration = Duration::from_millis(20);

/// Wakes the waiters of actions that have tasks ready after another
/// connection committed, until the queue that owns `wakeups` is gone.
fn watch(readers: Arc<ReadPool>, clock: Clock, wakeups: Weak<Wakeups>) {
    let conn = match readers.take() {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%error, "cannot watch the SQLite file for other processes' tasks; waiters poll");
            return;
        }
    };
    let mut seen: Option<i64> = None;
    loop {
        thread::sleep(WATCH_EVERY);
        let Some(wakeups) = wakeups.upgrade() else {
            return;
        };
        let version = conn.query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0));
        match version {
            Ok(version) if seen == Some(version) => continue,
            Ok(version) => seen = Some(version),
            Err(error) => {
                tracing::debug!(%error, "could not read the SQLite data version");
                continue;
            }
        }
        for action in wakeups.waited() {
            // An error cannot tell: let the waiters look for themselves.
            let ready = store::count_ready(&conn, to_micros(clock.now()), &action);
            if ready.is_err() || ready.is_ok_and(|n| n > 0) {
                wakeups.wake(&action);
            }
        }
    }
}

/// A task queue in one SQLite file.
#[derive(Debug)]
pub struct SqliteBackend {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReadPool>,
    clock: Clock,
    /// The writer's copy of the count mark (see `store::ADOPT_AT`).
    mark: Arc<AtomicI64>,
    /// When a claim last looked for tasks above the mark that no insert of
    /// this process adopts (inserted by hand, or by other programs).
    mark_checked: Mutex<Option<Instant>>,
    /// Opened without migrating on an older schema: operations fail with
    /// `SchemaTooOld`, looking again each time, until it is migrated.
    behind: AtomicBool,
}

/// How often claims look for tasks above the count mark, at most.
const MARK_CHECK_EVERY: Duration = Duration::from_secs(1);

impl SqliteBackend {
    /// Opens (creating if needed) the database file at `path`, checks it,
    /// and migrates it when `config.migrate` is set.
    ///
    /// Fails with a [`DatabaseErrorKind::NotADatabase`] error for a file
    /// that is not SQLite, and [`Error::SchemaTooNew`] for a database
    /// migrated by a newer taskq.
    pub async fn open(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, config))
            .await
            .map_err(|_| Error::Closed)?
    }

    /// [`open`](Self::open) for synchronous code.
    pub fn open_blocking(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let text = path.to_string_lossy();
        if text.is_empty() || text == ":memory:" || text.starts_with("file::memory:") {
            return Err(Error::invalid(
                "path",
                "taskq needs a database file; in-memory databases cannot be shared between its connections",
            ));
        }
        config.validate()?;
        check_openable(&path, config.create_file)?;
        let mut conn = open_connection(&path, &config)?;
        let behind = if config.migrate {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            migrate::migrate(&tx)?;
            tx.commit().map_err(db_error)?;
            false
        } else {
            migrate::check_not_newer(&conn)? < migrate::LATEST_VERSION
        };
        // Zero when the schema is older: the first insert then looks again.
        let mark = Arc::new(AtomicI64::new(store::count_mark(&conn).unwrap_or(0)));
        let levels = writer::SyncLevels {
            durable: sync_level(config.durability),
            relaxed: sync_level(Durability::ProcessCrash),
        };
        let writer = Writer::spawn(
            conn,
            format!("taskq-sqlite-writer:{}", path.display()),
            levels,
        )?;
        Ok(SqliteBackend {
            clock: config.clock.clone(),
            readers: Arc::new(ReadPool {
                path: path.clone(),
                config,
                idle: Mutex::new(Vec::new()),
            }),
            path,
            writer,
            mark,
            mark_checked: Mutex::new(None),
            behind: AtomicBool::new(behind),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a claim should look for tasks above the count mark: at
    /// most every [`MARK_CHECK_EVERY`].
    fn mark_check_due(&self) -> bool {
        let now = Instant::now();
        let mut checked = self.mark_checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.is_some_and(|at| now.duration_since(at) < MARK_CHECK_EVERY) {
            return false;
        }
        *checked = Some(now);
        true
    }

    /// Fails with `SchemaTooOld` while the schema is older than this build
    /// (opened without migrating); one atomic load once it is current.
    async fn current(&self) -> Result<()> {
        if !self.behind.load(Ordering::Relaxed) {
            return Ok(());
        }
        let found = self.read_any(migrate::schema_version).await?;
        if found < migrate::LATEST_VERSION {
            return Err(Error::SchemaTooOld {
                found,
                needed: migrate::LATEST_VERSION,
            });
        }
        self.behind.store(false, Ordering::Relaxed);
        Ok(())
    }

    async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.current().await?;
        self.writer.write(op).await
    }

    async fn write_relaxed<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.current().await?;
        self.writer.write_relaxed(op).await
    }

    async fn read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.current().await?;
        self.read_any(op).await
    }

    /// A read on a pooled connection, whatever the schema version.
    async fn read_any<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let result = op(&conn);
            pool.give_back(conn);
            result
        })
        .await
        .map_err(|e| {
            Error::Database(DatabaseError::new(
                DatabaseErrorKind::Other,
                format!("a read failed on its thread: {e}"),
                None,
            ))
        })?
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    fn supports_notify(&self) -> bool {
        true
    }

    /// Starts a thread that wakes waiters when another connection commits
    /// and their action has tasks ready, looking every 20 ms.
    fn listen(&self, wakeups: Arc<Wakeups>) {
        let readers = Arc::clone(&self.readers);
        let clock = self.clock.clone();
        let wakeups = Arc::downgrade(&wakeups);
        let started = thread::Builder::new()
            .name("taskq-sqlite-watch".to_string())
            .spawn(move || watch(readers, clock, wakeups));
        if let Err(error) = started {
            tracing::warn!(%error, "could not start the SQLite watch thread; waiters poll");
        }
    }

    async fn migrate(&self) -> Result<()> {
        self.writer.write(migrate::migrate).await?;
        self.behind.store(false, Ordering::Relaxed);
        Ok(())
    }

    async fn task_insert_many(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>> {
        let clock = self.clock.clone();
        let mark = Arc::clone(&self.mark);
        self.write(move |conn| store::insert(conn, to_micros(clock.now()), &tasks, Some(&mark)))
            .await
    }

    async fn task_insert_claimed(&self, task: NewTask) -> Result<(TaskId, Option<Task>)> {
        let clock = self.clock.clone();
        let mark = Arc::clone(&self.mark);
        self.write(move |conn| {
            store::insert_claimed(conn, to_micros(clock.now()), &task, Some(&mark))
        })
        .await
    }

    async fn task_claim(
        &self,
        action: &str,
        limit: u32,
        expiry: ExpiryBackoff,
    ) -> Result<Vec<Task>> {
        let clock = self.clock.clone();
        let action = action.to_owned();
        let adopt = self.mark_check_due().then(|| Arc::clone(&self.mark));
        // A claim lost in a power cut only means the task runs again (and
        // an adoption with it is lost whole).
        self.write_relaxed(move |conn| {
            if let Some(mark) = adopt {
                store::adopt_behind(conn, &mark)?;
            }
            store::claim(conn, to_micros(clock.now()), &action, limit, expiry)
        })
        .await
    }

    async fn task_complete(
        &self,
        lease: LeaseRef,
        follow_ups: Vec<NewTask>,
        retain: bool,
    ) -> Result<Vec<TaskId>> {
        let clock = self.clock.clone();
        let mark = Arc::clone(&self.mark);
        self.write(move |conn| {
            let now = to_micros(clock.now());
            store::complete(conn, now, lease, &follow_ups, retain, Some(&mark))
        })
        .await
    }

    async fn task_fail(
        &self,
        lease: LeaseRef,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<()> {
        let clock = self.clock.clone();
        let error = error.to_owned();
        self.write(move |conn| {
            store::fail(conn, to_micros(clock.now()), lease, &error, retry_after)
        })
        .await
    }

    async fn task_extend(&self, lease: LeaseRef, by: Duration) -> Result<SystemTime> {
        let clock = self.clock.clone();
        self.write(move |conn| store::extend(conn, to_micros(clock.now()), lease, by))
            .await
    }

    async fn task_release(&self, lease: LeaseRef, delay: Duration) -> Result<()> {
        let clock = self.clock.clone();
        self.write(move |conn| store::release(conn, to_micros(clock.now()), lease, delay))
            .await
    }

    async fn task_requeue_expired(&self, expiry: ExpiryBackoff) -> Result<u64> {
        let clock = self.clock.clone();
        self.write(move |conn| store::requeue_expired(conn, to_micros(clock.now()), None, expiry))
            .await
    }

    async fn task_count_ready(&self, action: &str) -> Result<u64> {
        let clock = self.clock.clone();
        let action = action.to_owned();
        self.read(move |conn| store::count_ready(conn, to_micros(clock.now()), &action))
            .await
    }

    async fn task_stats(&self) -> Result<Vec<ActionStats>> {
        self.read(store::stats).await
    }

    async fn task_get(&self, id: TaskId) -> Result<Option<Task>> {
        self.read(move |conn| store::get(conn, id)).await
    }

    async fn task_list(&self, options: &ListOptions) -> Result<Vec<Task>> {
        let options = options.clone();
        self.read(move |conn| store::list(conn, &options)).await
    }

    async fn task_retry(&self, id: TaskId) -> Result<()> {
        let clock = self.clock.clone();
        self.write(move |conn| store::retry(conn, to_micros(clock.now()), id))
            .await
    }

    async fn task_delete(&self, id: TaskId) -> Result<()> {
        self.write(move |conn| store::delete(conn, id)).await
    }

    async fn task_purge(&self, state: State, older_than: Duration) -> Result<u64> {
        let clock = self.clock.clone();
        self.write(move |conn| store::purge(conn, to_micros(clock.now()), state, older_than))
            .await
    }
}
