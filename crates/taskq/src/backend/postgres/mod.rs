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
//! # async fn example(client: &mut taskq::postgres::tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use taskq::postgres;
//! use taskq::NewTask;
//!
//! let tx = client.transaction().await?;
//! tx.execute("INSERT INTO users (name) VALUES ($1)", &[&"ada"]).await?;
//! postgres::enqueue_in(&tx, "taskq", &NewTask::json("welcome-email", &"ada")?).await?;
//! tx.commit().await?; // the user and the task commit together
//! // enqueue_many_in for a batch; complete_in(&tx, "taskq", &lease, follow_ups)
//! // completes a claimed task with the caller's writes.
//! # Ok(())
//! # }
//! ```

/// The `tokio-postgres` crate taskq is built with, whose client and
/// transaction types [`enqueue_in`] and [`complete_in`] take.
pub use tokio_postgres;

mod completer;
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
mod run;
mod schedules;
#[cfg(feature = "sqlx")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub mod sqlx;
mod statements;
mod throughput;
mod transactional;
mod vacuum;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;

use crate::attempt::WorkerId;
use crate::backend::{Backend, CancelTarget, Claimed, ExpiryBackoff, Extended, FailTo, Waiters};
use crate::error::{Error, Result};
use crate::limits::{LimitInfo, Limits};
use crate::micros;
use crate::names::TaskId;
use crate::options::ListOptions;
use crate::schedule::{Schedule, ScheduleInfo, Upserted};
use crate::state::{CancelOutcome, State};
use crate::task::{due_actions, ActionStats, LeaseRef, NewTask, Task};
use crate::throughput::Throughput;
use crate::unique::{Enqueued, RetryKey};
use crate::workflow::Links;

pub(crate) use config::take_param;
pub use config::{split_schema, validate_schema, PostgresConfig, MAX_SCHEMA_LEN};
pub(crate) use error::db_error;
pub use prepared::{prepare_complete, prepare_enqueue};
pub use transactional::{complete_in, enqueue_in, enqueue_many_in};

use config::{channel, quote};
use error::{lease_lost, pool_error};
use notify::{listener, notifier};
use rows::read_task;
use statements::{InsertColumns, Sql};

/// The schema version this build creates and needs.
pub use migrate::SCHEMA_VERSION;

/// A task queue in a PostgreSQL database.
#[derive(Debug)]
pub struct PostgresBackend {
    pool: Pool,
    pg_config: tokio_postgres::Config,
    schema: String,
    channel: String,
    sql: Sql,
    /// How statements are sent: prepared, or not (behind a pooler).
    run: Arc<run::Runner>,
    completer: completer::Completer,
    notifier: notifier::Notifier,
    counts: counts::TallyFolder,
    vacuum: vacuum::Vacuumer,
    /// When each action's expired leases were last requeued by a claim.
    expiry_checked: Mutex<HashMap<String, std::time::Instant>>,
    /// Which actions have limits, as last learned.
    limit_hints: limits::Hints,
    listener: Mutex<Option<JoinHandle<()>>>,
    /// Where the listener connects: the backend's own server, a direct
    /// URL past a pooler, or nowhere (behind a pooler without one).
    listen_to: Option<tokio_postgres::Config>,
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
        let mut pg_config = config::parse_url("url", url)?;
        pg_config.connect_timeout(config.connect_timeout);
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("taskq");
        }

        let listen_to = config.listen_config(&pg_config)?;
        let pool = pool::build(&pg_config, config.pool_size, config.connect_timeout)?;
        let run = run::Runner::new(config.prepared_statements);
        let quoted = quote(&config.schema);
        let completer = completer::Completer::spawn(
            pool.clone(),
            Arc::clone(&run),
            completer::CompleteSql {
                delete: include_str!("sql/task_complete_many.sql").replace("{schema}", &quoted),
                retain: include_str!("sql/task_complete_many_retain.sql")
                    .replace("{schema}", &quoted),
                completed: include_str!("sql/task_completed.sql").replace("{schema}", &quoted),
            },
        );
        let own_listener = notifier::OwnListener::default();
        let notifier = notifier::Notifier::spawn(
            pool.clone(),
            Arc::clone(&run),
            include_str!("sql/task_notify.sql").replace("{schema}", &quoted),
            channel(&config.schema),
            Arc::clone(&own_listener),
        );
        let counts = counts::TallyFolder::spawn(
            pool.clone(),
            Arc::clone(&run),
            include_str!("sql/task_counts_fold.sql").replace("{schema}", &quoted),
            include_str!("sql/task_counts_adopt.sql").replace("{schema}", &quoted),
            &config.schema,
        );
        let vacuum = vacuum::Vacuumer::spawn(
            pool.clone(),
            Arc::clone(&run),
            &config.schema,
            &quoted,
            config.vacuum_after,
        );
        let backend = PostgresBackend {
            completer,
            notifier,
            counts,
            vacuum,
            expiry_checked: Mutex::new(HashMap::new()),
            limit_hints: limits::Hints::default(),
            pool,
            pg_config,
            channel: channel(&config.schema),
            sql: Sql::for_schema(&config.schema),
            run,
            schema: config.schema,
            listener: Mutex::new(None),
            listen_to,
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
                .store(found < migrate::SCHEMA_VERSION, Ordering::Relaxed);
        }
        Ok(backend)
    }

    /// Notes that this process wrote tasks: the counts have tallies to
    /// fold, and the tables may have dead rows to vacuum.
    fn wrote(&self) {
        self.counts.changed();
        self.vacuum.changed();
    }

    /// The schema that holds the tables.
    pub fn schema(&self) -> &str {
        &self.schema
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

    async fn task_insert_many(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        self.wrote();
        if dependencies::is_graph(&tasks) {
            let client = self.client().await?;
            return dependencies::insert_graph(&**client, &self.sql, &self.channel, &tasks).await;
        }
        let columns = InsertColumns::new(&tasks);
        let due = due_actions(&tasks);
        let one = tasks.len() == 1;
        let sql = self.sql.insert_for(&tasks, !one);
        let params = if one {
            columns.params_of(0)
        } else {
            columns.params()
        };
        let rows = match self.notifier.send_with_insert(&due) {
            Some(inline) => self.insert_then_notify(sql, &params, &due, inline).await?,
            None => {
                let rows = self.query(sql, &params).await?;
                self.notifier.notify(due);
                rows
            }
        };
        match control::all_inserted(&tasks, &rows)? {
            Ok(enqueued) => Ok(enqueued),
            Err(ids) if self.run.unprepared() => {
                // Its lookups as text in a transaction, on one server
                // connection behind a pooler.
                let mut client = self.client().await?;
                let tx = client.transaction().await.map_err(db_error)?;
                let enqueued = control::enqueued(&*tx, &self.sql, &tasks, ids).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(enqueued)
            }
            Err(ids) => {
                let client = self.client().await?;
                control::enqueued(&**client, &self.sql, &tasks, ids).await
            }
        }
    }

    async fn task_insert_claimed(
        &self,
        task: NewTask,
        worker: &WorkerId,
    ) -> Result<(Enqueued, Option<Task>)> {
        let options = &task.options;
        if options.not_before.is_some()
            || options.unique.is_some()
            || !options.depends_on.is_empty()
            || options.concurrency_key.is_some()
        {
            let ids = self.task_insert_many(vec![task]).await?;
            return Ok((ids[0], None));
        }
        self.wrote();
        let rows = self
            .query(
                &self.sql.insert_claimed,
                &[
                    &task.action,
                    &task.payload,
                    &task.options.max_tries,
                    &micros::from_duration(task.options.timeout),
                    &task.options.parent.map(|p| p.0),
                    &task.options.priority,
                    &worker.to_json(),
                ],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::other("an insert returned no row"))?;
        let task = read_task(row)?;
        let claimed = (task.state == State::Running).then_some(task.clone());
        if claimed.is_none() {
            self.notifier.notify(vec![task.action.clone()]);
        }
        Ok((Enqueued::new(task.id), claimed))
    }

    async fn task_claim(
        &self,
        action: &str,
        limit: u32,
        expiry: ExpiryBackoff,
        worker: &WorkerId,
    ) -> Result<Claimed> {
        self.claim(action, limit, expiry, worker).await
    }

    async fn task_complete(
        &self,
        lease: LeaseRef,
        follow_ups: Vec<NewTask>,
        retain: bool,
        result: Option<Vec<u8>>,
    ) -> Result<Vec<Enqueued>> {
        // Deleting a running task changes no tally (running tasks are
        // counted live); keeping it, or follow-ups, do. Either leaves a
        // dead row.
        self.vacuum.changed();
        if retain || !follow_ups.is_empty() {
            self.wrote();
        }
        // Completions that arrive together share a statement, which keeps
        // no result: one with a result goes in a transaction of its own.
        if follow_ups.is_empty() && result.is_none() {
            self.completer.complete(lease, retain).await?;
            return Ok(Vec::new());
        }
        self.complete_with_follow_ups(lease, &follow_ups, retain, result.as_deref())
            .await
    }

    async fn task_fail(&self, lease: LeaseRef, error: &str, to: FailTo) -> Result<State> {
        self.wrote();
        let (retry_after, ends) = match to {
            FailTo::Retry(after) => (Some(micros::from_duration(after)), State::Failed),
            FailTo::Fail => (None, State::Failed),
            FailTo::Cancel => (None, State::Cancelled),
        };
        let params: [&(dyn ToSql + Sync); 5] = [
            &lease.id.0,
            &lease.token,
            &error,
            &retry_after,
            &ends.as_str(),
        ];
        let rows = self.fenced(&self.sql.fail, &params, Some(lease)).await?;
        Self::ended(lease, &rows)
    }

    async fn task_extend(&self, lease: LeaseRef, by: Duration) -> Result<Extended> {
        // Extending twice is harmless: the repeat of a lost one is too.
        let rows = self
            .fenced(
                &self.sql.extend,
                &[&lease.id.0, &lease.token, &micros::from_duration(by)],
                None,
            )
            .await?;
        match rows.first() {
            Some(row) => Ok(Extended {
                expires: row.try_get(0).map_err(db_error)?,
                cancel_requested: row.try_get(1).map_err(db_error)?,
            }),
            None => Err(lease_lost(lease)),
        }
    }

    async fn task_release(&self, lease: LeaseRef, delay: Duration) -> Result<State> {
        self.wrote();
        let rows = self
            .fenced(
                &self.sql.release,
                &[
                    &lease.id.0,
                    &lease.token,
                    &micros::from_duration(delay),
                    &self.channel,
                ],
                Some(lease),
            )
            .await?;
        Self::ended(lease, &rows)
    }

    async fn task_requeue_expired(&self, expiry: ExpiryBackoff) -> Result<u64> {
        self.wrote();
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
            let rows = rows
                .iter()
                .map(|row| {
                    let action: String = row.try_get(0).map_err(db_error)?;
                    let state: State = row.try_get::<_, String>(1).map_err(db_error)?.parse()?;
                    let count = row.try_get::<_, i64>(2).map_err(db_error)?;
                    Ok((action, state, count.unsigned_abs()))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut stats = ActionStats::fold(rows);
            ActionStats::mark_paused(&mut stats, &self.paused().await?);
            self.add_priorities(&mut stats).await?;
            Ok(stats)
        })
        .await
    }

    async fn task_get(&self, id: TaskId) -> Result<Option<Task>> {
        self.read(|| async {
            let rows = self.query(&self.sql.get, &[&id.0]).await?;
            rows.first().map(rows::read_stored_task).transpose()
        })
        .await
    }

    async fn task_list(&self, options: &ListOptions) -> Result<Vec<Task>> {
        self.list(options).await
    }

    async fn task_retry(&self, id: TaskId, key: RetryKey, dependents: bool) -> Result<()> {
        self.wrote();
        self.retry(id, key, dependents).await
    }

    async fn task_links(&self, id: TaskId) -> Result<Links> {
        self.links(id).await
    }

    async fn task_cancel(&self, target: CancelTarget) -> Result<Vec<(TaskId, CancelOutcome)>> {
        self.cancel(target).await
    }

    async fn task_pause(&self, action: &str) -> Result<bool> {
        self.pause(action).await
    }

    async fn task_resume(&self, action: &str) -> Result<bool> {
        self.resume(action).await
    }

    async fn task_paused(&self) -> Result<Vec<String>> {
        self.read(|| self.paused()).await
    }

    async fn task_delete(&self, id: TaskId) -> Result<()> {
        self.wrote();
        self.delete(id).await
    }

    async fn task_purge(
        &self,
        state: State,
        older_than: Duration,
        limit: Option<u32>,
    ) -> Result<u64> {
        self.wrote();
        let limit = limit.map(i64::from);
        let older_than = micros::from_duration(older_than);
        self.execute(&self.sql.purge, &[&state.as_str(), &older_than, &limit])
            .await
    }

    async fn schedule_list(&self) -> Result<(SystemTime, Vec<ScheduleInfo>)> {
        self.read(|| self.schedules()).await
    }

    async fn schedule_upsert(&self, schedule: &Schedule) -> Result<Upserted> {
        self.upsert_schedule(schedule).await
    }

    async fn schedule_remove(&self, name: &str) -> Result<bool> {
        self.remove_schedule(name).await
    }

    async fn schedule_set_paused(&self, name: &str, paused: bool) -> Result<Option<bool>> {
        self.pause_schedule(name, paused).await
    }

    async fn schedule_tick(
        &self,
        name: &str,
        from: SystemTime,
        to: SystemTime,
        tasks: Vec<NewTask>,
    ) -> Result<Option<Vec<Enqueued>>> {
        self.tick_schedule(name, (from, to), &tasks).await
    }

    async fn limit_set(&self, action: &str, limits: Limits) -> Result<()> {
        self.set_limits(action, limits).await
    }

    async fn limit_clear(&self, action: &str) -> Result<bool> {
        self.clear_limits(action).await
    }

    async fn limit_list(&self) -> Result<Vec<LimitInfo>> {
        self.list_limits().await
    }

    fn announce_freed(&self, action: &str) {
        self.notifier.notify(vec![action.to_owned()]);
    }

    async fn throughput_add(&self, rows: &[Throughput], keep_from: SystemTime) -> Result<()> {
        self.throughput_add_rows(rows, keep_from).await
    }

    async fn throughput_since(&self, since: SystemTime) -> Result<Vec<Throughput>> {
        self.throughput_rows_since(since).await
    }

    fn supports_notify(&self) -> bool {
        self.listen_to.is_some()
    }

    async fn flush(&self) -> Result<()> {
        self.notifier.flush().await;
        Ok(())
    }

    fn location(&self) -> Option<String> {
        let hosts: Vec<String> = self
            .pg_config
            .get_hosts()
            .iter()
            .map(|host| format!("{host:?}"))
            .collect();
        Some(format!(
            "postgres {:?} {:?} {:?} {:?} {}",
            self.pg_config.get_user(),
            hosts,
            self.pg_config.get_ports(),
            self.pg_config.get_dbname(),
            self.schema
        ))
    }

    fn listen(&self, waiters: Arc<dyn Waiters>) {
        let Some(listen_to) = &self.listen_to else {
            tracing::info!(
                "taskq: no LISTEN for other processes' enqueues: with prepared_statements off \
                 (a pooler in transaction mode) it needs PostgresConfig::listen_url, a direct \
                 URL; idle workers poll every QueueConfig::poll_interval instead"
            );
            return;
        };
        let mut listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if listener.is_none() {
            *listener = Some(listener::spawn(
                listen_to.clone(),
                self.channel.clone(),
                waiters,
                Arc::clone(&self.own_listener),
            ));
        }
    }
}
