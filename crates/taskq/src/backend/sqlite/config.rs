//! Settings of the SQLite backend, and how its connections are opened and
//! configured (WAL, sync level, busy timeout).

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::error::db_error;
use crate::clock::Clock;
use crate::error::{DatabaseError, DatabaseErrorKind, Error, Result};
use crate::options::validate_duration;

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

/// How idle workers hear of tasks that other processes (or connections of
/// the application's own) commit to the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileWatch {
    /// The operating system's file-change notifications on the database's
    /// WAL (inotify on Linux, kqueue on macOS and the BSDs,
    /// ReadDirectoryChangesW on Windows): a worker hears of another
    /// process's commit within about a millisecond. A look at the file
    /// every 250 ms stays as a safety net, and where notifications are
    /// unavailable (the watch cannot be set up, or commits are seen that
    /// no notification announced, as on some network or container file
    /// systems) the queue polls every 20 ms instead and logs that it does.
    /// The default.
    #[default]
    Auto,
    /// File-change notifications only, never a look of its own: when they
    /// are unavailable, other processes' tasks wait for the workers' own
    /// poll (`QueueConfig::poll_interval`). For tests and for measuring.
    NotificationsOnly,
    /// No notifications: a look at the file's data version every 20 ms.
    Poll,
}

/// Settings of a [`SqliteBackend`](super::SqliteBackend). Every field has a default.
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
    /// How idle workers hear of other processes' commits. Default:
    /// [`FileWatch::Auto`].
    pub watch: FileWatch,
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
            watch: FileWatch::default(),
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
/// level of `config.durability`, `config.busy_timeout`, and recursive
/// triggers (a cancelled task's dependents are cancelled down the graph). Call it on
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
    // Recursive triggers: a cancelled dependent cancels its own dependents
    // (migration 0010).
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA recursive_triggers = ON"
    ))
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
pub(super) fn sync_level(durability: Durability) -> &'static str {
    match durability {
        Durability::PowerLoss => "FULL",
        Durability::ProcessCrash => "NORMAL",
    }
}

pub(super) fn open_connection(path: &Path, config: &SqliteConfig) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if config.create_file {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(db_error)?;
    configure_connection(&conn, config)?;
    Ok(conn)
}

thread_local! {
    /// The busy timeout of the writes on this thread (see
    /// [`BusyHandler`]), and when the current wait began.
    static BUSY: Cell<(Duration, Option<Instant>)> = const { Cell::new((Duration::ZERO, None)) };
}

/// The first step of a wait for another connection's write lock; each
/// next step is twice as long, up to [`BUSY_STEP_MAX`].
const BUSY_STEP_FIRST: Duration = Duration::from_micros(25);
const BUSY_STEP_MAX: Duration = Duration::from_micros(500);

/// While alive, writes on `conn` from this thread wait for another
/// connection's write lock in steps of 25 µs growing to 0.5 ms, for
/// `timeout` in all. SQLite's own busy timeout sleeps 1, 2, 5, 10 ms and
/// more between tries, so a write that meets another process's commit,
/// which holds the lock for well under a millisecond, would often wait
/// 20 ms; this one waits about as long as the lock is held. For the
/// writer's connection, used by one thread at a time.
pub(super) struct BusyHandler {
    previous: (Duration, Option<Instant>),
}

impl BusyHandler {
    pub(super) fn here(conn: &Connection, timeout: Duration) -> Self {
        let previous = BUSY.with(|busy| busy.replace((timeout, None)));
        if let Err(error) = conn.busy_handler(Some(on_busy)) {
            tracing::warn!(%error, "could not set the SQLite busy handler; writes wait for other connections' locks with SQLite's own");
        }
        BusyHandler { previous }
    }
}

impl Drop for BusyHandler {
    fn drop(&mut self) {
        BUSY.with(|busy| busy.set(self.previous));
    }
}

/// SQLite's busy handler: `tries` is 0 at the first try of a wait.
fn on_busy(tries: i32) -> bool {
    let now = Instant::now();
    let (timeout, began) = BUSY.with(Cell::get);
    let began = match began {
        Some(began) if tries > 0 => began,
        _ => now,
    };
    BUSY.with(|busy| busy.set((timeout, Some(began))));
    if now.duration_since(began) >= timeout {
        return false;
    }
    let step = BUSY_STEP_FIRST * 2u32.saturating_pow(tries.clamp(0, 16) as u32);
    std::thread::sleep(step.min(BUSY_STEP_MAX));
    true
}

/// Says what is missing when the file cannot be opened because it, or its
/// directory, does not exist (SQLite only says "unable to open").
pub(super) fn check_openable(path: &Path, create: bool) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_handler_waits_for_its_timeout_then_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let holder = Connection::open(&path).unwrap();
        holder
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); BEGIN IMMEDIATE")
            .unwrap();
        let waiter = Connection::open(&path).unwrap();
        let _busy = BusyHandler::here(&waiter, Duration::from_millis(200));
        let started = Instant::now();
        let refused = waiter.execute_batch("BEGIN IMMEDIATE");
        let waited = started.elapsed();
        assert!(refused.is_err(), "the lock is held");
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(3),
            "gave up after {waited:?}"
        );
        // Released while it waits: it gets the lock soon after.
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            holder.execute_batch("COMMIT").unwrap();
        });
        let started = Instant::now();
        waiter.execute_batch("BEGIN IMMEDIATE; COMMIT").unwrap();
        releaser.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
