//! The connection pool, and how the backend runs its statements on it
//! (through `run.rs`): reads retried once on a fresh connection, fenced
//! writes that say when the lease was lost.

use std::time::Duration;

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::Poll;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::error::{conflicted, db_error, pool_error};
use super::notify::notifier;
use super::run::{self, Runner};
use super::{migrate, PostgresBackend};
use crate::error::{DatabaseErrorKind, Error, Result};

/// A pool of at most `size` connections to `pg_config`'s database, each
/// made or handed out within `timeout`.
pub(super) fn build(
    pg_config: &tokio_postgres::Config,
    size: usize,
    timeout: Duration,
) -> Result<Pool> {
    let manager = Manager::from_config(
        pg_config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // The connection used last is used next: its server process is
    // awake and its caches warm, where cycling through them all is not.
    Pool::builder(manager)
        .queue_mode(deadpool_postgres::QueueMode::Lifo)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .build()
        .map_err(|e| Error::invalid("url", format!("could not set up the connection pool: {e}")))
}

/// Whether the connection was lost before the answer came (the write may
/// or may not have been applied).
pub(super) fn lost(error: &Error) -> bool {
    error.database_kind() == Some(DatabaseErrorKind::ConnectionLost)
}

/// Runs `sql` on a pooled connection; a connection found lost is taken
/// out of the pool rather than given back, so that a repeat gets another
/// (the pool would notice only once the connection's task has ended).
pub(super) async fn query_detaching_lost(
    pool: &Pool,
    run: &Runner,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    let client = pool.get().await.map_err(pool_error)?;
    let result = run.query(&client, sql, params).await;
    if result.as_ref().is_err_and(lost) {
        drop(deadpool_postgres::Object::take(client));
    }
    result
}

/// A new connection, outside the pool, for the repeat of a write whose
/// connection was lost: the pool's idle connections may have been lost
/// with it (a server restart, backends killed together) without the pool
/// knowing yet. Dropped after the repeat.
pub(super) async fn fresh_client(pool: &Pool) -> Result<deadpool_postgres::ClientWrapper> {
    use deadpool::managed::Manager as _;
    pool.manager().create().await.map_err(db_error)
}

/// The pauses before the repeats of a write whose connection was lost:
/// one at once, and, while each repeat's new connection is lost too
/// (backends killed again, a server restarting), two more a moment later.
const REPEATS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(100),
    Duration::from_millis(500),
];

/// Runs `op` on a [fresh](fresh_client) connection, again on another
/// after each pause of [`REPEATS`] while the connection is lost. `op`
/// must be safe to repeat: fenced by a lease token, and finding out
/// itself whether an earlier try applied.
pub(super) async fn on_fresh<T, F, Fut>(pool: &Pool, mut op: F) -> Result<T>
where
    F: FnMut(deadpool_postgres::ClientWrapper) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut last = None;
    for pause in REPEATS {
        tokio::time::sleep(pause).await;
        let tried = match fresh_client(pool).await {
            Ok(client) => op(client).await,
            Err(error) => Err(error),
        };
        match tried {
            Err(error) if lost(&error) => last = Some(error),
            other => return other,
        }
    }
    Err(last.unwrap_or(Error::Closed))
}

/// The pauses before the repeats of a write that the server rolled back
/// to break a deadlock (see [`conflicted`]), each stretched by a random
/// part of itself so that the two sides do not meet again in step.
const CONFLICT_REPEATS: [Duration; 3] = [
    Duration::from_millis(5),
    Duration::from_millis(25),
    Duration::from_millis(100),
];

/// Runs `op`, and again after each pause of [`CONFLICT_REPEATS`] while
/// the server rolls it back to break a deadlock or a serialization
/// conflict: a batch of completions whose cancellations and releases
/// down a workflow cross another's, say. Nothing of a rolled-back try
/// applied, so `op` runs again as it was.
pub(super) async fn repeating_conflicts<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    for pause in CONFLICT_REPEATS {
        match op().await {
            Err(error) if conflicted(&error) => {
                tracing::warn!(%error, "the server rolled a write back to break a deadlock; trying it again");
                let stretch = pause.mul_f64(fastrand::f64());
                tokio::time::sleep(pause + stretch).await;
            }
            other => return other,
        }
    }
    op().await
}

/// Runs one statement on a pooled connection for a background task (a
/// wake-up, a fold of the counts), whose failure is only logged.
pub(super) async fn execute_in_background(
    pool: &Pool,
    run: &Runner,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<u64, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    run.execute(&client, sql, params)
        .await
        .map_err(|e| e.to_string())
}

impl PostgresBackend {
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Client> {
        let client = self.pool.get().await.map_err(pool_error)?;
        if self.behind.load(Ordering::Relaxed) {
            let found = migrate::check_not_newer(&**client, &self.schema).await?;
            if found < migrate::SCHEMA_VERSION {
                return Err(Error::SchemaTooOld {
                    found,
                    needed: migrate::SCHEMA_VERSION,
                });
            }
            self.behind.store(false, Ordering::Relaxed);
        }
        Ok(client)
    }

    pub(super) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let client = self.client().await?;
        self.run.query(&client, sql, params).await
    }

    /// Inserts tasks (`insert` with its `params`) and sends the wake-up of
    /// `due` right behind it on the same connection (pipelined): the
    /// server runs the NOTIFY, in a transaction of its own, as soon as the
    /// insert has committed. Its request is on its way when the insert's
    /// answer arrives, so it is sent even if the process exits then.
    pub(super) async fn insert_then_notify(
        &self,
        insert: &str,
        params: &[&(dyn ToSql + Sync)],
        due: &[String],
        inline: notifier::Inline,
    ) -> Result<Vec<Row>> {
        let client = self.client().await?;
        let insert = self.run.ready(&client, insert).await?;
        let notify_sql = match inline {
            notifier::Inline::Always => &self.sql.notify,
            notifier::Inline::IfHeard => &self.sql.notify_if_heard,
        };
        let notify = self.run.ready(&client, notify_sql).await?;
        let listener = notifier::listener_name_shown(&self.channel);
        let own = self.own_listener.load(Ordering::Relaxed);
        let notify_params: Vec<&(dyn ToSql + Sync)> = match inline {
            notifier::Inline::Always => vec![&self.channel, &due],
            notifier::Inline::IfHeard => vec![&self.channel, &due, &listener, &own],
        };
        if self.run.unprepared() {
            // One after the other: a pooler may not keep the connection
            // between the two.
            let rows = run::query(&client, &insert, params).await?;
            if let Err(error) = run::query(&client, &notify, &notify_params).await {
                tracing::debug!(%error, "could not send a wake-up notification");
            }
            return Ok(rows);
        }
        let mut insert = pin!(run::query(&client, &insert, params));
        let mut notify = pin!(run::query(&client, &notify, &notify_params));
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
        rows
    }

    /// A fenced write (one that names a lease token), tried again on a
    /// fresh connection when the connection was lost before its answer
    /// (a server restart, a killed backend; see [`on_fresh`]): the token
    /// makes the repeat harmless, as it changes nothing once the first one
    /// applied. For the end of a try (`ends`: a fail or release of that
    /// lease), a repeat that finds nothing to change returns instead, read
    /// on the same connection, the state the first one left if it applied
    /// and no claim took the task since (`task_applied.sql`). A write the
    /// server rolled back to break a deadlock runs again (see
    /// [`repeating_conflicts`]).
    pub(super) async fn fenced(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        ends: Option<crate::task::LeaseRef>,
    ) -> Result<Vec<Row>> {
        let first =
            repeating_conflicts(|| query_detaching_lost(&self.pool, &self.run, sql, params)).await;
        match first {
            Err(error) if lost(&error) => {
                tracing::warn!(%error, "the connection was lost during a write; trying it again");
                on_fresh(&self.pool, |client| async move {
                    let rows = self.run.query(&client, sql, params).await?;
                    match ends {
                        Some(lease) if rows.is_empty() => {
                            let params: [&(dyn ToSql + Sync); 2] = [&lease.id.0, &lease.token];
                            self.run.query(&client, &self.sql.applied, &params).await
                        }
                        _ => Ok(rows),
                    }
                })
                .await
            }
            other => other,
        }
    }

    /// The state the end of a try of `lease` left, as its [`fenced`]
    /// statement returned it; none means the lease was lost.
    ///
    /// [`fenced`]: Self::fenced
    pub(super) fn ended(lease: crate::task::LeaseRef, rows: &[Row]) -> Result<crate::state::State> {
        match rows.first() {
            Some(row) => row.try_get::<_, String>(0).map_err(db_error)?.parse(),
            None => Err(super::error::lease_lost(lease)),
        }
    }

    pub(super) async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let client = self.client().await?;
        self.run.execute(&client, sql, params).await
    }

    /// A read, tried once more on a fresh connection if the first one
    /// turned out to be dead (after a server restart, say).
    pub(super) async fn read<T, F, Fut>(&self, op: F) -> Result<T>
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
}
