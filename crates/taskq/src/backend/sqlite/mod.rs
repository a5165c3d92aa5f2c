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
//! let enqueued = sqlite::enqueue_in(&tx, &NewTask::json("welcome-email", &"ada")?)?;
//! tx.commit()?; // the user and the task commit together
//! # assert!(enqueued.id.0 > 0 && !enqueued.duplicate);
//! # Ok(())
//! # }
//! ```

mod config;
mod control;
mod counts;
mod dependencies;
mod error;
mod limits;
mod list;
mod migrate;
mod notify;
mod pool;
mod prepared;
mod rows;
mod schedules;
#[cfg(feature = "sqlx")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub mod sqlx;
mod statements;
mod throughput;
mod transactional;
mod writer;

/// The `rusqlite` crate taskq is built with, for transactional enqueues
/// on connections of your own without matching its version.
pub use rusqlite;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use rusqlite::TransactionBehavior;

use crate::attempt::WorkerId;
use crate::backend::{Backend, CancelTarget, Claimed, ExpiryBackoff, Extended, FailTo, Waiters};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::limits::{LimitInfo, Limits};
use crate::micros;
use crate::names::TaskId;
use crate::options::ListOptions;
use crate::schedule::{Schedule, ScheduleInfo, Upserted};
use crate::state::{CancelOutcome, State};
use crate::task::{ActionStats, LeaseRef, NewTask, Task};
use crate::throughput::Throughput;
use crate::unique::{Enqueued, RetryKey};
use crate::workflow::Links;

pub use config::{configure_connection, Durability, FileWatch, SqliteConfig};
pub use prepared::{prepare_complete, prepare_enqueue};
pub use transactional::{complete_in, enqueue_in, enqueue_many_in, migrate_in};

use config::{check_openable, open_connection, sync_level};
use error::db_error;
use pool::ReadPool;
use writer::Writer;

/// The schema version this build creates and needs.
pub use migrate::SCHEMA_VERSION;

/// A task queue in one SQLite file.
#[derive(Debug)]
pub struct SqliteBackend {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReadPool>,
    clock: Clock,
    /// The writer's copy of the count mark (see `counts::ADOPT_AT`).
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
    /// Fails with a [`DatabaseErrorKind::NotADatabase`](crate::DatabaseErrorKind::NotADatabase) error for a file
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
            migrate::check_not_newer(&conn)? < migrate::SCHEMA_VERSION
        };
        // Zero when the schema is older: the first insert then looks again.
        let mark = Arc::new(AtomicI64::new(counts::count_mark(&conn).unwrap_or(0)));
        let levels = writer::SyncLevels {
            durable: sync_level(config.durability),
            relaxed: sync_level(Durability::ProcessCrash),
        };
        let writer = Writer::spawn(
            conn,
            format!("taskq-sqlite-writer:{}", path.display()),
            levels,
            config.busy_timeout,
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
}

#[async_trait]
impl Backend for SqliteBackend {
    fn supports_notify(&self) -> bool {
        true
    }

    /// Starts a thread that, when another connection commits, wakes
    /// waiters whose action has tasks ready and tells running handlers
    /// whose task's cancellation was asked for: told of commits by file
    /// notifications on the WAL, or looking every 20 ms (see
    /// [`FileWatch`]).
    fn listen(&self, waiters: Arc<dyn Waiters>) {
        let readers = Arc::downgrade(&self.readers);
        let clock = self.clock.clone();
        let waiters = Arc::downgrade(&waiters);
        let mode = self.readers.config.watch;
        let writing = self.writer.holds_lock();
        let started = thread::Builder::new()
            .name("taskq-sqlite-watch".to_string())
            .spawn(move || notify::watch(readers, clock, waiters, mode, writing));
        if let Err(error) = started {
            tracing::warn!(%error, "could not start the SQLite watch thread; waiters poll");
        }
    }

    fn location(&self) -> Option<String> {
        let path = std::fs::canonicalize(&self.path).ok()?;
        Some(format!("sqlite {}", path.display()))
    }

    async fn migrate(&self) -> Result<()> {
        self.writer.write(migrate::migrate).await?;
        self.behind.store(false, Ordering::Relaxed);
        Ok(())
    }

    async fn task_insert_many(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        let clock = self.clock.clone();
        let mark = Arc::clone(&self.mark);
        self.write(move |conn| {
            statements::insert(conn, micros::from_time(clock.now()), &tasks, Some(&mark))
        })
        .await
    }

    async fn task_insert_claimed(
        &self,
        task: NewTask,
        worker: &WorkerId,
    ) -> Result<(Enqueued, Option<Task>)> {
        let clock = self.clock.clone();
        let mark = Arc::clone(&self.mark);
        let worker = worker.clone();
        self.write(move |conn| {
            let now = micros::from_time(clock.now());
            statements::insert_claimed(conn, now, &task, Some(&mark), &worker)
        })
        .await
    }

    async fn task_claim(
        &self,
        action: &str,
        limit: u32,
        expiry: ExpiryBackoff,
        worker: &WorkerId,
    ) -> Result<Claimed> {
        let clock = self.clock.clone();
        let action = action.to_owned();
        let worker = worker.clone();
        let adopt = self.mark_check_due().then(|| Arc::clone(&self.mark));
        // A claim lost in a power cut only means the task runs again (and
        // an adoption with it is lost whole).
        self.write_relaxed(move |conn| {
            if let Some(mark) = adopt {
                counts::adopt_behind(conn, &mark)?;
            }
            let now = micros::from_time(clock.now());
            statements::claim(conn, now, &action, limit, expiry, &worker)
        })
        .await
    }

    async fn task_complete(
        &self,
        lease: LeaseRef,
        follow_ups: Vec<NewTask>,
        retain: bool,
        result: Option<Vec<u8>>,
    ) -> Result<Vec<Enqueued>> {
        let clock = self.clock.clone();
        let mark = Arc::clone(&self.mark);
        let follow_ups = Arc::new(follow_ups);
        let result = Arc::new(result);
        self.fenced(move |conn| {
            let now = micros::from_time(clock.now());
            let keep = (retain, result.as_deref());
            statements::complete(conn, now, lease, &follow_ups, keep, Some(&mark))
        })
        .await
    }

    async fn task_fail(&self, lease: LeaseRef, error: &str, to: FailTo) -> Result<State> {
        let clock = self.clock.clone();
        let error: Arc<str> = error.into();
        self.fenced(move |conn| {
            statements::fail(conn, micros::from_time(clock.now()), lease, &error, to)
        })
        .await
    }

    async fn task_extend(&self, lease: LeaseRef, by: Duration) -> Result<Extended> {
        let clock = self.clock.clone();
        self.fenced(move |conn| statements::extend(conn, micros::from_time(clock.now()), lease, by))
            .await
    }

    async fn task_release(&self, lease: LeaseRef, delay: Duration) -> Result<State> {
        let clock = self.clock.clone();
        self.fenced(move |conn| {
            statements::release(conn, micros::from_time(clock.now()), lease, delay)
        })
        .await
    }

    async fn task_requeue_expired(&self, expiry: ExpiryBackoff) -> Result<u64> {
        let clock = self.clock.clone();
        self.write(move |conn| {
            statements::requeue_expired(conn, micros::from_time(clock.now()), None, expiry)
        })
        .await
    }

    async fn task_count_ready(&self, action: &str) -> Result<u64> {
        let clock = self.clock.clone();
        let action = action.to_owned();
        self.read(move |conn| {
            statements::count_ready(conn, micros::from_time(clock.now()), &action)
        })
        .await
    }

    async fn task_stats(&self) -> Result<Vec<ActionStats>> {
        let clock = self.clock.clone();
        self.read(move |conn| {
            let mut stats = statements::stats(conn)?;
            statements::add_priorities(conn, micros::from_time(clock.now()), &mut stats)?;
            ActionStats::mark_paused(&mut stats, &control::paused(conn)?);
            Ok(stats)
        })
        .await
    }

    async fn task_get(&self, id: TaskId) -> Result<Option<Task>> {
        self.read(move |conn| statements::get(conn, id)).await
    }

    async fn task_list(&self, options: &ListOptions) -> Result<Vec<Task>> {
        let options = options.clone();
        self.read(move |conn| list::list(conn, &options)).await
    }

    async fn task_retry(&self, id: TaskId, key: RetryKey, dependents: bool) -> Result<()> {
        let clock = self.clock.clone();
        self.write(move |conn| {
            control::retry(conn, micros::from_time(clock.now()), id, &key)?;
            dependencies::reopen(conn, id, dependents)
        })
        .await
    }

    async fn task_links(&self, id: TaskId) -> Result<Links> {
        self.read(move |conn| dependencies::links(conn, id)).await
    }

    async fn task_cancel(&self, target: CancelTarget) -> Result<Vec<(TaskId, CancelOutcome)>> {
        let clock = self.clock.clone();
        self.write(move |conn| control::cancel(conn, micros::from_time(clock.now()), &target))
            .await
    }

    async fn task_pause(&self, action: &str) -> Result<bool> {
        let clock = self.clock.clone();
        let action = action.to_owned();
        self.write(move |conn| control::pause(conn, micros::from_time(clock.now()), &action))
            .await
    }

    async fn task_resume(&self, action: &str) -> Result<bool> {
        let action = action.to_owned();
        self.write(move |conn| control::resume(conn, &action)).await
    }

    async fn task_paused(&self) -> Result<Vec<String>> {
        self.read(control::paused).await
    }

    async fn task_delete(&self, id: TaskId) -> Result<()> {
        let clock = self.clock.clone();
        self.write(move |conn| statements::delete(conn, micros::from_time(clock.now()), id))
            .await
    }

    async fn task_purge(
        &self,
        state: State,
        older_than: Duration,
        limit: Option<u32>,
    ) -> Result<u64> {
        let clock = self.clock.clone();
        self.write(move |conn| {
            let now = micros::from_time(clock.now());
            statements::purge(conn, now, (state, older_than), limit)
        })
        .await
    }

    async fn schedule_list(&self) -> Result<(SystemTime, Vec<ScheduleInfo>)> {
        let clock = self.clock.clone();
        self.read(move |conn| Ok((clock.now(), schedules::list(conn)?)))
            .await
    }

    async fn schedule_upsert(&self, schedule: &Schedule) -> Result<Upserted> {
        let clock = self.clock.clone();
        let schedule = schedule.clone();
        self.write(move |conn| schedules::upsert(conn, micros::from_time(clock.now()), &schedule))
            .await
    }

    async fn schedule_remove(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |conn| schedules::remove(conn, &name)).await
    }

    async fn schedule_set_paused(&self, name: &str, paused: bool) -> Result<Option<bool>> {
        let clock = self.clock.clone();
        let name = name.to_owned();
        self.write(move |conn| {
            schedules::set_paused(conn, micros::from_time(clock.now()), &name, paused)
        })
        .await
    }

    async fn schedule_tick(
        &self,
        name: &str,
        from: SystemTime,
        to: SystemTime,
        tasks: Vec<NewTask>,
    ) -> Result<Option<Vec<Enqueued>>> {
        let clock = self.clock.clone();
        let mark = Arc::clone(&self.mark);
        let name = name.to_owned();
        let (from, to) = (micros::from_time(from), micros::from_time(to));
        self.write(move |conn| {
            let now = micros::from_time(clock.now());
            schedules::tick(conn, now, (&name, from, to), &tasks, Some(&mark))
        })
        .await
    }

    async fn limit_set(&self, action: &str, limits: Limits) -> Result<()> {
        let clock = self.clock.clone();
        let action = action.to_owned();
        self.write(move |conn| limits::set(conn, micros::from_time(clock.now()), &action, limits))
            .await
    }

    async fn limit_clear(&self, action: &str) -> Result<bool> {
        let action = action.to_owned();
        self.write(move |conn| limits::clear(conn, &action)).await
    }

    async fn limit_list(&self) -> Result<Vec<LimitInfo>> {
        let clock = self.clock.clone();
        self.read(move |conn| limits::list(conn, micros::from_time(clock.now())))
            .await
    }

    async fn throughput_add(&self, rows: &[Throughput], keep_from: SystemTime) -> Result<()> {
        let rows = rows.to_vec();
        let keep_from = crate::throughput::minute_of(keep_from);
        self.write(move |conn| throughput::add(conn, &rows, keep_from))
            .await
    }

    async fn throughput_since(&self, since: SystemTime) -> Result<Vec<Throughput>> {
        let since = crate::throughput::minute_of(since);
        self.read(move |conn| throughput::since(conn, since)).await
    }
}
