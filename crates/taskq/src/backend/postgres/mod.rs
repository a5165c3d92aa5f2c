//! The PostgreSQL backend: one database shared by workers on many machines.
//! Available with the crate feature `postgres`.
//!
//! Built on [`tokio_postgres`], the mainstream asynchronous PostgreSQL
//! driver, with a [`deadpool_postgres`] connection pool. Claims use
//! `FOR UPDATE SKIP LOCKED`, so concurrent workers take different tasks
//! without waiting for each other; lease and schedule times come from the
//! database clock (`now()`), so the machines' clocks do not matter; an
//! idle [`Queue::claim_wait`](crate::Queue::claim_wait) is woken within
//! milliseconds through `LISTEN`/`NOTIFY`, and polls as a fallback.
//!
//! # Transactional enqueue
//!
//! Enqueue on your own `tokio_postgres` transaction so the task commits or
//! rolls back with your data:
//!
//! ```no_run
//! # async fn example(client: &mut tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use taskq::postgres;
//! use taskq::NewTask;
//!
//! let tx = client.transaction().await?;
//! tx.execute("INSERT INTO users (name) VALUES ($1)", &[&"ada"]).await?;
//! postgres::enqueue_in(&tx, "taskq", &[NewTask::json("welcome-email", &"ada")?]).await?;
//! tx.commit().await?; // the user and the task commit together
//! # Ok(())
//! # }
//! ```

/// The `tokio-postgres` crate taskq is built with, whose client and
/// transaction types [`enqueue_in`] and [`complete_in`] take.
pub use tokio_postgres;

mod completer;
mod counts;
mod listener;
mod migrate;
mod notifier;

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, NoTls, Row};

use crate::backend::{Backend, ExpiryBackoff, PageOrder, StateIndex};
use crate::error::{DatabaseError, DatabaseErrorKind, Error, Result};
use crate::lease::{Lease, LeaseRef};
use crate::options::{validate_duration, ListOptions, NotBefore};
use crate::queue::due_actions;
use crate::state::State;
use crate::task::{ActionStats, NewTask, Task, TaskId};
use crate::wakeup::Wakeups;

pub use migrate::LATEST_VERSION as SCHEMA_VERSION;

/// The longest schema name taskq accepts.
pub const MAX_SCHEMA_LEN: usize = 50;

/// Settings of a [`PostgresBackend`]. Every field has a default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresConfig {
    /// The schema that holds taskq's tables: lower-case letters, digits
    /// and underscores, not starting with a digit, at most
    /// [`MAX_SCHEMA_LEN`] long. Created by the migration. Default: `taskq`.
    pub schema: String,
    /// The most pooled connections. Default: 16.
    pub pool_size: usize,
    /// How long to wait for a connection, new or from the pool, before
    /// failing with a connection error. Default: 10 seconds.
    pub connect_timeout: Duration,
    /// Create or upgrade the schema when connecting. Default: `true`.
    /// When `false` and the schema is older than this build needs,
    /// operations fail with [`Error::SchemaTooOld`] until it is migrated
    /// (by [`Queue::migrate`](crate::Queue::migrate) or another process).
    pub migrate: bool,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            schema: "taskq".to_string(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
            migrate: true,
        }
    }
}

impl PostgresConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        validate_schema(&self.schema)?;
        if self.pool_size == 0 {
            return Err(Error::invalid("pool_size", "must be at least 1"));
        }
        validate_duration("connect_timeout", self.connect_timeout, false)
    }
}

/// Checks a schema name: it is spliced into SQL as an identifier, so only
/// plain names are accepted, and the server's own schemas
/// (`information_schema`, `pg_catalog` and the other `pg_` ones) are
/// refused.
pub fn validate_schema(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let plain = matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'));
    if !plain || schema.len() > MAX_SCHEMA_LEN {
        return Err(Error::invalid(
            "schema",
            format!(
                "{schema:?} is not a plain schema name (lower-case letters, digits and \
                 underscores, not starting with a digit, at most {MAX_SCHEMA_LEN} long)"
            ),
        ));
    }
    if schema == "information_schema" || schema.starts_with("pg_") {
        return Err(Error::invalid(
            "schema",
            format!("{schema:?} is one of the server's own schemas; choose a schema of your own (the default is taskq)"),
        ));
    }
    Ok(())
}

/// Takes taskq's own `schema=NAME` query parameter out of a PostgreSQL
/// URL, returning the URL the driver understands and the schema.
pub fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("schema=") {
            Some(name) => {
                schema = Some(name.to_string());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, schema)
}

/// A validated schema name as a quoted identifier.
fn quote(schema: &str) -> String {
    format!("\"{schema}\"")
}

/// The `NOTIFY` channel of a schema's queue.
fn channel(schema: &str) -> String {
    format!("taskq_{schema}")
}

/// Turns a driver error into taskq's, with a portable kind.
pub(crate) fn db_error(error: tokio_postgres::Error) -> Error {
    let (kind, message) = match error.as_db_error() {
        Some(db) => {
            let code = db.code();
            if (*code == SqlState::UNDEFINED_TABLE && db.message().contains("taskq_"))
                || *code == SqlState::INVALID_SCHEMA_NAME
            {
                return Error::SchemaTooOld {
                    found: 0,
                    needed: SCHEMA_VERSION,
                };
            }
            let kind = if *code == SqlState::UNIQUE_VIOLATION {
                DatabaseErrorKind::UniqueViolation
            } else if [
                SqlState::LOCK_NOT_AVAILABLE,
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(code)
            {
                DatabaseErrorKind::Busy
            } else if *code == SqlState::DISK_FULL {
                DatabaseErrorKind::Full
            } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
                DatabaseErrorKind::ReadOnly
            } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
                DatabaseErrorKind::PermissionDenied
            } else if [
                SqlState::INVALID_PASSWORD,
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                SqlState::INVALID_CATALOG_NAME,
            ]
            .contains(code)
            {
                DatabaseErrorKind::CannotOpen
            } else if [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::CONNECTION_FAILURE,
                SqlState::CONNECTION_EXCEPTION,
            ]
            .contains(code)
            {
                DatabaseErrorKind::ConnectionLost
            } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
                DatabaseErrorKind::Corrupt
            } else {
                DatabaseErrorKind::Other
            };
            (kind, format!("{}: {}", db.severity(), db.message()))
        }
        None => {
            let mut message = error.to_string();
            let mut connection = error.is_closed() || message.starts_with("error connecting");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !message.contains(&text) {
                    message = format!("{message}: {text}");
                }
                connection |= cause.is::<std::io::Error>();
                source = cause.source();
            }
            let kind = if connection {
                DatabaseErrorKind::ConnectionLost
            } else {
                DatabaseErrorKind::Other
            };
            (kind, message)
        }
    };
    Error::Database(DatabaseError::new(kind, message, Some(Arc::new(error))))
}

fn pool_error(error: PoolError) -> Error {
    match error {
        PoolError::Backend(error) => db_error(error),
        PoolError::Closed => Error::Closed,
        other => Error::Database(DatabaseError::new(
            DatabaseErrorKind::ConnectionLost,
            format!("no connection to PostgreSQL: {other}"),
            None,
        )),
    }
}

fn read_task(row: &Row) -> Result<Task> {
    let read = || -> Result<Task, tokio_postgres::Error> {
        let state: String = row.try_get(3)?;
        Ok(Task {
            id: TaskId(row.try_get(0)?),
            action: row.try_get(1)?,
            payload: row.try_get(2)?,
            state: state.parse().unwrap_or(State::Failed),
            not_before: row.try_get(4)?,
            tries: row.try_get(5)?,
            max_tries: row.try_get(6)?,
            timeout: Duration::from_micros(row.try_get::<_, i64>(7)?.max(0) as u64),
            expires: row.try_get(8)?,
            parent: row.try_get::<_, Option<i64>>(9)?.map(TaskId),
            last_error: row.try_get(10)?,
            created_at: row.try_get(11)?,
            finished_at: row.try_get(12)?,
            lease_token: row.try_get(13)?,
        })
    };
    read().map_err(db_error)
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Runs one statement on a pooled connection for a background task (a
/// wake-up, a fold of the counts), whose failure is only logged.
async fn execute_in_background(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<u64, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let statement = client
        .prepare_cached(sql)
        .await
        .map_err(|e| e.to_string())?;
    client
        .execute(&statement, params)
        .await
        .map_err(|e| e.to_string())
}

/// The least time between two requeues of an action's expired leases by
/// this process's claims: the statement costs about as much as half a
/// claim, and leases last seconds to minutes.
const EXPIRY_EVERY: Duration = Duration::from_millis(100);

/// Every statement, with the schema filled in.
#[derive(Debug)]
struct Sql {
    insert: String,
    insert_claimed: String,
    insert_many: String,
    notify: String,
    notify_if_heard: String,
    requeue_expired: String,
    claim: String,
    complete: String,
    complete_retain: String,
    fail: String,
    extend: String,
    release: String,
    count_ready: String,
    stats: String,
    get: String,
    /// A template: see [`PostgresBackend::task_list`].
    list: String,
    retry: String,
    delete: String,
    purge: String,
    state: String,
}

impl Sql {
    fn for_schema(schema: &str) -> Self {
        let quoted = quote(schema);
        let fill = |sql: &str| sql.replace("{schema}", &quoted);
        Sql {
            insert: fill(include_str!("sql/task_insert.sql")),
            insert_claimed: fill(include_str!("sql/task_insert_claimed.sql")),
            insert_many: fill(include_str!("sql/task_insert_many.sql")),
            notify: fill(include_str!("sql/task_notify.sql")),
            notify_if_heard: fill(include_str!("sql/task_notify_if_heard.sql")),
            requeue_expired: fill(include_str!("sql/task_requeue_expired.sql")),
            claim: fill(include_str!("sql/task_claim.sql")),
            complete: fill(include_str!("sql/task_complete.sql")),
            complete_retain: fill(include_str!("sql/task_complete_retain.sql")),
            fail: fill(include_str!("sql/task_fail.sql")),
            extend: fill(include_str!("sql/task_extend.sql")),
            release: fill(include_str!("sql/task_release.sql")),
            count_ready: fill(include_str!("sql/task_count_ready.sql")),
            stats: fill(include_str!("sql/task_stats.sql")),
            get: fill(include_str!("sql/task_get.sql")),
            list: fill(include_str!("sql/task_list.sql")),
            retry: fill(include_str!("sql/task_retry.sql")),
            delete: fill(include_str!("sql/task_delete.sql")),
            purge: fill(include_str!("sql/task_purge.sql")),
            state: fill(include_str!("sql/task_state.sql")),
        }
    }
}

/// The columns of a batch insert, one array per column.
struct InsertColumns<'a> {
    actions: Vec<&'a str>,
    payloads: Vec<&'a [u8]>,
    run_at: Vec<Option<SystemTime>>,
    delays: Vec<Option<i64>>,
    max_tries: Vec<i32>,
    timeouts: Vec<i64>,
    parents: Vec<Option<i64>>,
}

impl<'a> InsertColumns<'a> {
    fn new(tasks: &'a [NewTask]) -> Self {
        let mut columns = InsertColumns {
            actions: Vec::with_capacity(tasks.len()),
            payloads: Vec::with_capacity(tasks.len()),
            run_at: Vec::with_capacity(tasks.len()),
            delays: Vec::with_capacity(tasks.len()),
            max_tries: Vec::with_capacity(tasks.len()),
            timeouts: Vec::with_capacity(tasks.len()),
            parents: Vec::with_capacity(tasks.len()),
        };
        for task in tasks {
            let options = &task.options;
            let (at, delay) = match options.not_before {
                None => (None, None),
                Some(NotBefore::Delay(delay)) => (None, Some(micros(delay))),
                Some(NotBefore::At(at)) => (Some(at), None),
            };
            columns.actions.push(&task.action);
            columns.payloads.push(&task.payload);
            columns.run_at.push(at);
            columns.delays.push(delay);
            columns.max_tries.push(options.max_tries);
            columns.timeouts.push(micros(options.timeout));
            columns.parents.push(options.parent.map(|p| p.0));
        }
        columns
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.actions,
            &self.payloads,
            &self.run_at,
            &self.delays,
            &self.max_tries,
            &self.timeouts,
            &self.parents,
        ]
    }
}

fn ids(rows: &[Row]) -> Result<Vec<TaskId>> {
    rows.iter()
        .map(|row| row.try_get(0).map(TaskId).map_err(db_error))
        .collect()
}

fn lease_lost(lease: LeaseRef) -> Error {
    Error::LeaseLost {
        id: lease.id,
        token: lease.token,
    }
}

/// Enqueues tasks on the caller's own connection or transaction (any
/// [`tokio_postgres::GenericClient`]), in the taskq tables of `schema`:
/// inside a transaction they commit or roll back with it. All or none.
pub async fn enqueue_in(
    client: &impl GenericClient,
    schema: &str,
    tasks: &[NewTask],
) -> Result<Vec<TaskId>> {
    validate_schema(schema)?;
    tasks.iter().try_for_each(NewTask::validate)?;
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let sql = Sql::for_schema(schema);
    let columns = InsertColumns::new(tasks);
    let rows = client
        .query(&sql.insert_many, &columns.params())
        .await
        .map_err(db_error)?;
    let due = due_actions(tasks);
    let notify = async {
        if due.is_empty() {
            return Ok(());
        }
        // Inside the caller's transaction: delivered if it commits.
        client
            .query(&sql.notify, &[&channel(schema), &due])
            .await
            .map(drop)
            .map_err(db_error)
    };
    // Sent together (pipelined): one round trip.
    tokio::try_join!(notify, counted_by_triggers_again(client))?;
    ids(&rows)
}

/// Ends `taskq.tallied` for the rest of the caller's transaction: taskq's
/// statements set it so that the counting triggers leave their changes to
/// them, and the caller's own later changes to the tasks must be counted.
async fn counted_by_triggers_again(client: &impl GenericClient) -> Result<()> {
    client
        .batch_execute("SELECT set_config('taskq.tallied', '', true)")
        .await
        .map_err(db_error)
}

/// Completes a leased task on the caller's own transaction, with
/// follow-up tasks: the caller's writes, the completion and the follow-ups
/// commit together or not at all. Fenced like [`Lease::complete`]: if the
/// lease was lost it returns [`Error::LeaseLost`] and writes nothing (roll
/// the transaction back then).
pub async fn complete_in(
    client: &impl GenericClient,
    schema: &str,
    lease: &Lease,
    follow_ups: Vec<NewTask>,
) -> Result<Vec<TaskId>> {
    validate_schema(schema)?;
    let follow_ups = lease.prepare_follow_ups(follow_ups)?;
    let sql = Sql::for_schema(schema);
    let lease_ref = lease.lease_ref();
    let complete = if lease.queue().config().retain_completed {
        &sql.complete_retain
    } else {
        &sql.complete
    };
    let changed = client
        .execute(complete, &[&lease_ref.id.0, &lease_ref.token])
        .await
        .map_err(db_error)?;
    if changed != 1 {
        counted_by_triggers_again(client).await?;
        return Err(lease_lost(lease_ref));
    }
    if follow_ups.is_empty() {
        counted_by_triggers_again(client).await?;
        return Ok(Vec::new());
    }
    enqueue_in(client, schema, &follow_ups).await
}

/// A task queue in a PostgreSQL database.
#[derive(Debug)]
pub struct PostgresBackend {
    pool: Pool,
    pg_config: tokio_postgres::Config,
    schema: String,
    channel: String,
    sql: Sql,
    completer: completer::Completer,
    notifier: notifier::Notifier,
    counts: counts::Folder,
    /// When each action's expired leases were last requeued by a claim.
    expiry_checked: Mutex<HashMap<String, std::time::Instant>>,
    listener: Mutex<Option<JoinHandle<()>>>,
    /// The server process id of that listener's session while it listens.
    own_listener: notifier::OwnListener,
    /// Set when the schema was found older than this build needs and not
    /// migrated: operations look its version up again and refuse with
    /// [`Error::SchemaTooOld`] until it is (by [`Backend::migrate`] or by
    /// another process).
    behind: AtomicBool,
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        if let Some(listener) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            listener.abort();
        }
    }
}

impl PostgresBackend {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`
    /// or a key-value connection string), checks it, and migrates it when
    /// `config.migrate` is set.
    ///
    /// The URL's password is never printed in errors or logs.
    pub async fn connect(url: &str, config: PostgresConfig) -> Result<Self> {
        config.validate()?;
        let mut pg_config = tokio_postgres::Config::from_str(url).map_err(|e| {
            Error::invalid(
                "url",
                format!("not a valid PostgreSQL connection URL ({e})"),
            )
        })?;
        pg_config.connect_timeout(config.connect_timeout);
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("taskq");
        }

        let manager = Manager::from_config(
            pg_config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // The connection used last is used next: its server process is
        // awake and its caches warm, where cycling through them all is not.
        let pool = Pool::builder(manager)
            .queue_mode(deadpool_postgres::QueueMode::Lifo)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.connect_timeout))
            .create_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| {
                Error::invalid("url", format!("could not set up the connection pool: {e}"))
            })?;
        let quoted = quote(&config.schema);
        let completer = completer::Completer::spawn(
            pool.clone(),
            completer::CompleteSql {
                delete: include_str!("sql/task_complete_many.sql").replace("{schema}", &quoted),
                retain: include_str!("sql/task_complete_many_retain.sql")
                    .replace("{schema}", &quoted),
            },
        );
        let own_listener = notifier::OwnListener::default();
        let notifier = notifier::Notifier::spawn(
            pool.clone(),
            include_str!("sql/task_notify.sql").replace("{schema}", &quoted),
            channel(&config.schema),
            Arc::clone(&own_listener),
        );
        let counts = counts::Folder::spawn(
            pool.clone(),
            include_str!("sql/task_counts_fold.sql").replace("{schema}", &quoted),
            include_str!("sql/task_counts_adopt.sql").replace("{schema}", &quoted),
            &config.schema,
        );
        let backend = PostgresBackend {
            completer,
            notifier,
            counts,
            expiry_checked: Mutex::new(HashMap::new()),
            pool,
            pg_config,
            channel: channel(&config.schema),
            sql: Sql::for_schema(&config.schema),
            schema: config.schema,
            listener: Mutex::new(None),
            own_listener,
            behind: AtomicBool::new(false),
        };
        if config.migrate {
            backend.migrate().await?;
        } else {
            let client = backend.client().await?;
            let found = migrate::check_not_newer(&**client, &backend.schema).await?;
            backend
                .behind
                .store(found < migrate::LATEST_VERSION, Ordering::Relaxed);
        }
        Ok(backend)
    }

    /// Whether a claim of `action` should first requeue its expired
    /// leases: at most every [`EXPIRY_EVERY`] per action in this process.
    fn expiry_due(&self, action: &str) -> bool {
        let now = std::time::Instant::now();
        let mut checked = self
            .expiry_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if checked
            .get(action)
            .is_some_and(|at| now.duration_since(*at) < EXPIRY_EVERY)
        {
            return false;
        }
        if checked.len() >= 10_000 {
            checked.retain(|_, at| now.duration_since(*at) < EXPIRY_EVERY);
        }
        checked.insert(action.to_owned(), now);
        true
    }

    /// The schema that holds the tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn client(&self) -> Result<deadpool_postgres::Client> {
        let client = self.pool.get().await.map_err(pool_error)?;
        if self.behind.load(Ordering::Relaxed) {
            let found = migrate::check_not_newer(&**client, &self.schema).await?;
            if found < migrate::LATEST_VERSION {
                return Err(Error::SchemaTooOld {
                    found,
                    needed: migrate::LATEST_VERSION,
                });
            }
            self.behind.store(false, Ordering::Relaxed);
        }
        Ok(client)
    }

    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db_error)?;
        client.query(&statement, params).await.map_err(db_error)
    }

    /// Inserts tasks (`insert` with its `params`) and sends the wake-up of
    /// `due` right behind it on the same connection (pipelined): the
    /// server runs the NOTIFY, in a transaction of its own, as soon as the
    /// insert has committed. Its request is on its way when the insert's
    /// answer arrives, so it is sent even if the process exits then.
    async fn insert_and_notify(
        &self,
        insert: &str,
        params: &[&(dyn ToSql + Sync)],
        due: &[String],
        inline: notifier::Inline,
    ) -> Result<Vec<TaskId>> {
        let client = self.client().await?;
        let insert = client.prepare_cached(insert).await.map_err(db_error)?;
        let notify_sql = match inline {
            notifier::Inline::Always => &self.sql.notify,
            notifier::Inline::IfHeard => &self.sql.notify_if_heard,
        };
        let notify = client.prepare_cached(notify_sql).await.map_err(db_error)?;
        let listener = notifier::listener_name_shown(&self.channel);
        let own = self.own_listener.load(Ordering::Relaxed);
        let notify_params: Vec<&(dyn ToSql + Sync)> = match inline {
            notifier::Inline::Always => vec![&self.channel, &due],
            notifier::Inline::IfHeard => vec![&self.channel, &due, &listener, &own],
        };
        let mut insert = pin!(client.query(&insert, params));
        let mut notify = pin!(client.query(&notify, &notify_params));
        let mut notify_done = false;
        // Each query's request goes out on its first poll, the insert's
        // first. The notification's answer is not awaited: the connection
        // reads and drops it once the future is gone. A hint only: waiters
        // poll, so a lost one costs latency.
        let rows = poll_fn(|cx| {
            let rows = insert.as_mut().poll(cx);
            if !notify_done {
                if let Poll::Ready(notified) = notify.as_mut().poll(cx) {
                    notify_done = true;
                    if let Err(error) = notified {
                        tracing::debug!(%error, "could not send a wake-up notification");
                    }
                }
            }
            rows
        })
        .await;
        ids(&rows.map_err(db_error)?)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db_error)?;
        client.execute(&statement, params).await.map_err(db_error)
    }

    /// A read, tried once more on a fresh connection if the first one
    /// turned out to be dead (after a server restart, say).
    async fn read<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        match op().await {
            Err(error) if error.database_kind() == Some(DatabaseErrorKind::ConnectionLost) => {
                op().await
            }
            other => other,
        }
    }

    async fn fenced(
        &self,
        sql: &str,
        lease: LeaseRef,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<()> {
        match self.execute(sql, params).await? {
            1 => Ok(()),
            _ => Err(lease_lost(lease)),
        }
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    async fn migrate(&self) -> Result<()> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        migrate::migrate(&mut client, &self.schema).await?;
        self.behind.store(false, Ordering::Relaxed);
        Ok(())
    }

    async fn task_insert_many(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>> {
        self.counts.changed();
        let columns = InsertColumns::new(&tasks);
        let due = due_actions(&tasks);
        let rows = if tasks.len() == 1 {
            let one: [&(dyn ToSql + Sync); 7] = [
                &columns.actions[0],
                &columns.payloads[0],
                &columns.run_at[0],
                &columns.delays[0],
                &columns.max_tries[0],
                &columns.timeouts[0],
                &columns.parents[0],
            ];
            if let Some(inline) = self.notifier.send_with_insert(&due) {
                return self
                    .insert_and_notify(&self.sql.insert, &one, &due, inline)
                    .await;
            }
            self.query(&self.sql.insert, &one).await?
        } else {
            if let Some(inline) = self.notifier.send_with_insert(&due) {
                return self
                    .insert_and_notify(&self.sql.insert_many, &columns.params(), &due, inline)
                    .await;
            }
            self.query(&self.sql.insert_many, &columns.params()).await?
        };
        self.notifier.notify(due);
        ids(&rows)
    }

    async fn task_insert_claimed(&self, task: NewTask) -> Result<(TaskId, Option<Task>)> {
        if task.options.not_before.is_some() {
            let ids = self.task_insert_many(vec![task]).await?;
            return Ok((ids[0], None));
        }
        self.counts.changed();
        let rows = self
            .query(
                &self.sql.insert_claimed,
                &[
                    &task.action,
                    &task.payload,
                    &task.options.max_tries,
                    &micros(task.options.timeout),
                    &task.options.parent.map(|p| p.0),
                ],
            )
            .await?;
        let row = rows.first().ok_or_else(|| {
            Error::Database(DatabaseError::new(
                DatabaseErrorKind::Other,
                "an insert returned no row",
                None,
            ))
        })?;
        let task = read_task(row)?;
        let claimed = (task.state == State::Running).then_some(task.clone());
        if claimed.is_none() {
            self.notifier.notify(vec![task.action.clone()]);
        }
        Ok((task.id, claimed))
    }

    async fn task_claim(
        &self,
        action: &str,
        limit: u32,
        expiry: ExpiryBackoff,
    ) -> Result<Vec<Task>> {
        let client = self.client().await?;
        let claim = client
            .prepare_cached(&self.sql.claim)
            .await
            .map_err(db_error)?;
        let limit = i64::from(limit);
        let claim_params: [&(dyn ToSql + Sync); 2] = [&Some(action), &limit];
        let claimed = if self.expiry_due(action) {
            let expire = client
                .prepare_cached(&self.sql.requeue_expired)
                .await
                .map_err(db_error)?;
            let expire_params: [&(dyn ToSql + Sync); 3] =
                [&Some(action), &expiry.initial_micros, &expiry.max_micros];
            // Sent together (pipelined); each statement is its own
            // transaction, and the claim sees what the requeue committed.
            let (expired, claimed) = tokio::join!(
                client.execute(&expire, &expire_params),
                client.query(&claim, &claim_params),
            );
            if expired.map_err(db_error)? > 0 {
                self.counts.changed();
            }
            claimed
        } else {
            client.query(&claim, &claim_params).await
        };
        let mut tasks = claimed
            .map_err(db_error)?
            .iter()
            .map(read_task)
            .collect::<Result<Vec<_>>>()?;
        if !tasks.is_empty() {
            self.counts.changed();
        }
        tasks.sort_by_key(|task| (task.not_before, task.id));
        Ok(tasks)
    }

    async fn task_complete(
        &self,
        lease: LeaseRef,
        follow_ups: Vec<NewTask>,
        retain: bool,
    ) -> Result<Vec<TaskId>> {
        // Deleting a running task changes no tally (running tasks are
        // counted live); keeping it, or follow-ups, do.
        if retain || !follow_ups.is_empty() {
            self.counts.changed();
        }
        let complete = if retain {
            &self.sql.complete_retain
        } else {
            &self.sql.complete
        };
        if follow_ups.is_empty() {
            self.completer.complete(lease, retain).await?;
            return Ok(Vec::new());
        }
        let params: [&(dyn ToSql + Sync); 2] = [&lease.id.0, &lease.token];
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let statement = tx.prepare_cached(complete).await.map_err(db_error)?;
        if tx.execute(&statement, &params).await.map_err(db_error)? != 1 {
            return Err(lease_lost(lease));
        }
        crate::failpoint::hit("inside-completion");
        let columns = InsertColumns::new(&follow_ups);
        let insert = tx
            .prepare_cached(&self.sql.insert_many)
            .await
            .map_err(db_error)?;
        let rows = tx
            .query(&insert, &columns.params())
            .await
            .map_err(db_error)?;
        let due = due_actions(&follow_ups);
        if !due.is_empty() {
            let notify = tx
                .prepare_cached(&self.sql.notify)
                .await
                .map_err(db_error)?;
            tx.query(&notify, &[&self.channel, &due])
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        ids(&rows)
    }

    async fn task_fail(
        &self,
        lease: LeaseRef,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<()> {
        self.counts.changed();
        let retry_after = retry_after.map(micros);
        let params: [&(dyn ToSql + Sync); 4] = [&lease.id.0, &lease.token, &error, &retry_after];
        self.fenced(&self.sql.fail, lease, &params).await
    }

    async fn task_extend(&self, lease: LeaseRef, by: Duration) -> Result<SystemTime> {
        let rows = self
            .query(&self.sql.extend, &[&lease.id.0, &lease.token, &micros(by)])
            .await?;
        match rows.first() {
            Some(row) => row.try_get(0).map_err(db_error),
            None => Err(lease_lost(lease)),
        }
    }

    async fn task_release(&self, lease: LeaseRef, delay: Duration) -> Result<()> {
        self.counts.changed();
        let rows = self
            .query(
                &self.sql.release,
                &[&lease.id.0, &lease.token, &micros(delay), &self.channel],
            )
            .await?;
        if rows.is_empty() {
            return Err(lease_lost(lease));
        }
        Ok(())
    }

    async fn task_requeue_expired(&self, expiry: ExpiryBackoff) -> Result<u64> {
        self.counts.changed();
        let params: [&(dyn ToSql + Sync); 3] =
            [&None::<&str>, &expiry.initial_micros, &expiry.max_micros];
        self.execute(&self.sql.requeue_expired, &params).await
    }

    async fn task_count_ready(&self, action: &str) -> Result<u64> {
        self.read(|| async {
            let rows = self.query(&self.sql.count_ready, &[&action]).await?;
            let count: i64 = rows[0].try_get(0).map_err(db_error)?;
            Ok(count as u64)
        })
        .await
    }

    async fn task_stats(&self) -> Result<Vec<ActionStats>> {
        self.read(|| async {
            let rows = self.query(&self.sql.stats, &[]).await?;
            let mut stats: Vec<ActionStats> = Vec::new();
            for row in rows {
                let action: String = row.try_get(0).map_err(db_error)?;
                let state: State = row.try_get::<_, String>(1).map_err(db_error)?.parse()?;
                let count = row.try_get::<_, i64>(2).map_err(db_error)? as u64;
                match stats.last_mut() {
                    Some(last) if last.action == action => last.add(state, count),
                    _ => {
                        let mut entry = ActionStats::new(action);
                        entry.add(state, count);
                        stats.push(entry);
                    }
                }
            }
            Ok(stats)
        })
        .await
    }

    async fn task_get(&self, id: TaskId) -> Result<Option<Task>> {
        self.read(|| async {
            let rows = self.query(&self.sql.get, &[&id.0]).await?;
            rows.first().map(read_task).transpose()
        })
        .await
    }

    /// A page of tasks. The statement gives a state with the condition of
    /// the state's partial index, so that the planner may read the tasks
    /// of a state few tasks are in through it (sorting them by id) instead
    /// of all tasks in id order. Without `after`, the page starts after the
    /// smallest integer (or before the largest), so that the primary key
    /// starts it in any plan.
    async fn task_list(&self, options: &ListOptions) -> Result<Vec<Task>> {
        let (page, after) = PageOrder::of(options);
        let filter = match options.state {
            // Conditions the planner can match to an index in a generic
            // plan too (the ready index starts with the action).
            Some(state) => format!(
                "{} AND state = $2 AND {}",
                StateIndex::of(state).holds,
                if options.action.is_some() {
                    "action = $1"
                } else {
                    "$1::text IS NULL"
                }
            ),
            None => "($1::text IS NULL OR action = $1) AND $2::text IS NULL".to_owned(),
        };
        let sql = self
            .sql
            .list
            .replace("{filter}", &filter)
            .replace("{after}", page.after)
            .replace("{order}", page.direction);
        let state = options.state.map(State::as_str);
        let limit = i64::from(options.limit);
        self.read(|| async {
            let rows = self
                .query(&sql, &[&options.action, &state, &after, &limit])
                .await?;
            rows.iter().map(read_task).collect()
        })
        .await
    }

    async fn task_retry(&self, id: TaskId) -> Result<()> {
        self.counts.changed();
        let rows = self.query(&self.sql.retry, &[&id.0, &self.channel]).await?;
        if !rows.is_empty() {
            return Ok(());
        }
        let rows = self.query(&self.sql.state, &[&id.0]).await?;
        match rows.first() {
            None => Err(Error::TaskNotFound { id }),
            Some(row) => Err(Error::WrongState {
                id,
                actual: row.try_get::<_, String>(0).map_err(db_error)?.parse()?,
                expected: State::Failed,
            }),
        }
    }

    async fn task_delete(&self, id: TaskId) -> Result<()> {
        self.counts.changed();
        match self.execute(&self.sql.delete, &[&id.0]).await? {
            1 => Ok(()),
            _ => Err(Error::TaskNotFound { id }),
        }
    }

    async fn task_purge(&self, state: State, older_than: Duration) -> Result<u64> {
        self.counts.changed();
        self.execute(&self.sql.purge, &[&state.as_str(), &micros(older_than)])
            .await
    }

    fn supports_notify(&self) -> bool {
        true
    }

    async fn flush(&self) -> Result<()> {
        self.notifier.flush().await;
        Ok(())
    }

    fn listen(&self, wakeups: Arc<Wakeups>) {
        let mut listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if listener.is_none() {
            *listener = Some(listener::spawn(
                self.pg_config.clone(),
                self.channel.clone(),
                wakeups,
                Arc::clone(&self.own_listener),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_taken_out_of_the_url() {
        assert_eq!(
            split_schema("postgres://h/db"),
            ("postgres://h/db".into(), None)
        );
        assert_eq!(
            split_schema("postgres://h/db?schema=jobs"),
            ("postgres://h/db".into(), Some("jobs".into()))
        );
        assert_eq!(
            split_schema("postgres://h/db?sslmode=disable&schema=jobs&connect_timeout=5"),
            (
                "postgres://h/db?sslmode=disable&connect_timeout=5".into(),
                Some("jobs".into())
            )
        );
    }

    #[test]
    fn only_plain_schema_names_pass() {
        for good in ["taskq", "_x", "jobs_2", &"a".repeat(MAX_SCHEMA_LEN)] {
            assert!(validate_schema(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_SCHEMA_LEN + 1);
        for bad in [
            "",
            "1abc",
            "Jobs",
            "a-b",
            "a\"; DROP TABLE x; --",
            "a b",
            &long,
            "information_schema",
            "pg_catalog",
            "pg_toast",
            "pg_temp_1",
        ] {
            assert!(
                matches!(
                    validate_schema(bad),
                    Err(Error::InvalidInput {
                        field: "schema",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}
