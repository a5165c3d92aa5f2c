//! Completions. Those without follow-ups that arrive together share one
//! statement and one commit: while a batch is being committed the next
//! one gathers, and each caller hears back only after the commit that
//! holds its completion. One with follow-ups is a transaction of its own.
//! Either, when its connection is lost before the answer, is tried once
//! more on a fresh connection unless it turns out to have committed; and
//! either runs again when the server rolls it back to break a deadlock
//! (completions settle dependents down a workflow, whose row locks two
//! batches may take in crossing orders).

use std::collections::HashSet;
use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::lease_lost;
use super::pool::{lost, on_fresh, query_detaching_lost as query, repeating_conflicts};
use super::run::Runner;
use super::{db_error, PostgresBackend};
use crate::error::{Error, Result};
use crate::task::{LeaseRef, NewTask};
use crate::unique::Enqueued;

/// The most completions one statement carries.
const MAX_BATCH: usize = 1000;

struct Job {
    lease: LeaseRef,
    retain: bool,
    reply: oneshot::Sender<Result<()>>,
}

#[derive(Debug)]
pub(super) struct Completer {
    jobs: mpsc::UnboundedSender<Job>,
    task: JoinHandle<()>,
}

impl Drop for Completer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The statements: delete, or mark succeeded when retained; and the
/// look at what is left of a batch after a lost connection.
pub(super) struct CompleteSql {
    pub(super) delete: String,
    pub(super) retain: String,
    pub(super) completed: String,
}

impl Completer {
    pub(super) fn spawn(pool: Pool, runner: Arc<Runner>, sql: CompleteSql) -> Self {
        let (jobs, inbox) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(pool, runner, Arc::new(sql), inbox));
        Completer { jobs, task }
    }

    pub(super) async fn complete(&self, lease: LeaseRef, retain: bool) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                lease,
                retain,
                reply,
            })
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

async fn run(
    pool: Pool,
    runner: Arc<Runner>,
    sql: Arc<CompleteSql>,
    mut inbox: mpsc::UnboundedReceiver<Job>,
) {
    let mut later: Vec<Job> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut later);
        if batch.is_empty() {
            match inbox.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
        }
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // One statement per kind; a task named twice waits for the next
        // round, so that each of its callers gets its own answer.
        let mut seen = HashSet::new();
        let (mut delete, mut retain) = (Vec::new(), Vec::new());
        for job in batch {
            if !seen.insert(job.lease.id) {
                later.push(job);
            } else if job.retain {
                retain.push(job);
            } else {
                delete.push(job);
            }
        }
        execute(&pool, &runner, &sql.delete, &sql.completed, delete).await;
        execute(&pool, &runner, &sql.retain, &sql.completed, retain).await;
    }
}

/// Runs the completions of `jobs` in one statement; when the connection
/// is lost before the answer, once more on a fresh one (the lease tokens
/// make the repeat harmless), and then those the repeat found nothing for
/// count as completed if their task is gone or succeeded under the same
/// lease: the first statement applied them.
async fn execute(pool: &Pool, runner: &Runner, sql: &str, completed: &str, mut jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    // The same lock order in every batch.
    jobs.sort_by_key(|job| job.lease.id);
    let ids: Vec<i64> = jobs.iter().map(|job| job.lease.id.0).collect();
    let tokens: Vec<i64> = jobs.iter().map(|job| job.lease.token).collect();
    crate::failpoint::hit("before-commit");
    let params: [&(dyn ToSql + Sync); 2] = [&ids, &tokens];
    let first = repeating_conflicts(|| query(pool, runner, sql, &params)).await;
    let result = match first {
        Err(error) if lost(&error) => {
            tracing::warn!(%error, "the connection was lost during a batch of completions; trying it once more");
            on_fresh(pool, |client| {
                let jobs = &jobs;
                let params = &params;
                async move {
                    let rows = repeating_conflicts(|| runner.query(&client, sql, params)).await?;
                    let mut done = returned(&rows);
                    let applied = applied_before(&client, runner, completed, jobs, &done).await?;
                    done.extend(applied);
                    Ok(done)
                }
            })
            .await
        }
        other => other.map(|rows| returned(&rows)),
    };
    match result {
        Ok(done) => {
            for job in jobs {
                let answer = if done.contains(&job.lease.id.0) {
                    Ok(())
                } else {
                    Err(lease_lost(job.lease))
                };
                let _ = job.reply.send(answer);
            }
        }
        Err(error) => {
            let message = error.to_string();
            let kind = error.database_kind();
            for job in jobs {
                let copy = match (&error, kind) {
                    (Error::Database(e), _) => Error::Database(e.clone()),
                    _ => Error::Database(crate::error::DatabaseError::new(
                        kind.unwrap_or(crate::error::DatabaseErrorKind::Other),
                        message.clone(),
                        None,
                    )),
                };
                let _ = job.reply.send(Err(copy));
            }
        }
    }
}

/// The ids a completion statement returned: those it completed.
fn returned(rows: &[Row]) -> HashSet<i64> {
    rows.iter().filter_map(|row| row.try_get(0).ok()).collect()
}

/// Of `jobs` not in `done`, those whose task is gone or succeeded under
/// the job's own lease, looked up on `client` (the repeat's connection).
async fn applied_before(
    client: &deadpool_postgres::ClientWrapper,
    runner: &Runner,
    sql: &str,
    jobs: &[Job],
    done: &HashSet<i64>,
) -> Result<Vec<i64>> {
    let left: Vec<&Job> = jobs
        .iter()
        .filter(|job| !done.contains(&job.lease.id.0))
        .collect();
    if left.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = left.iter().map(|job| job.lease.id.0).collect();
    let found = runner.query(client, sql, &[&ids]).await?;
    let still: std::collections::HashMap<i64, (String, i64)> = found
        .iter()
        .filter_map(|row| {
            Some((
                row.try_get(0).ok()?,
                (row.try_get(1).ok()?, row.try_get(2).ok()?),
            ))
        })
        .collect();
    Ok(left
        .iter()
        .filter(|job| match still.get(&job.lease.id.0) {
            None => true,
            Some((state, token)) => state == "succeeded" && *token == job.lease.token,
        })
        .map(|job| job.lease.id.0)
        .collect())
}

/// What a lost connection left of a completion with follow-ups.
enum Left {
    /// Nothing: it did not commit.
    Nothing,
    /// It committed; these are its follow-ups.
    Committed(Vec<Enqueued>),
    /// It committed, but its follow-ups cannot all be named now (some
    /// were duplicates of a unique key, or already ran and were deleted).
    Unnamed,
}

impl PostgresBackend {
    /// Completes the task of `lease` and inserts `follow_ups`, in one
    /// transaction; tried once more when the connection is lost before
    /// the answer and the first one did not commit.
    pub(super) async fn complete_with_follow_ups(
        &self,
        lease: LeaseRef,
        follow_ups: &[NewTask],
        retain: bool,
        result: Option<&[u8]>,
    ) -> Result<Vec<Enqueued>> {
        let first =
            repeating_conflicts(|| self.complete_in_transaction(lease, follow_ups, retain, result))
                .await;
        match first {
            Err(error) if lost(&error) => {
                tracing::warn!(%error, "the connection was lost during a completion; trying it once more unless it committed");
                let repeated = on_fresh(&self.pool, |mut fresh| async move {
                    match self.left_by_lost(&fresh, lease, follow_ups.len()).await? {
                        Left::Nothing => self
                            .transaction(&mut fresh, lease, follow_ups, retain, result)
                            .await
                            .map(Some),
                        Left::Committed(ids) => Ok(Some(ids)),
                        Left::Unnamed => Ok(None),
                    }
                })
                .await?;
                // Unnamed: the task will not run again; the caller hears the error.
                repeated.ok_or(error)
            }
            other => other,
        }
    }

    /// One try of [`complete_with_follow_ups`](Self::complete_with_follow_ups);
    /// a connection found lost is taken out of the pool.
    async fn complete_in_transaction(
        &self,
        lease: LeaseRef,
        follow_ups: &[NewTask],
        retain: bool,
        result: Option<&[u8]>,
    ) -> Result<Vec<Enqueued>> {
        let mut client = self.client().await?;
        let done = self
            .transaction(&mut client, lease, follow_ups, retain, result)
            .await;
        if done.as_ref().is_err_and(lost) {
            drop(deadpool_postgres::Object::take(client));
        }
        done
    }

    async fn transaction(
        &self,
        client: &mut deadpool_postgres::ClientWrapper,
        lease: LeaseRef,
        follow_ups: &[NewTask],
        retain: bool,
        result: Option<&[u8]>,
    ) -> Result<Vec<Enqueued>> {
        let tx = client.transaction().await.map_err(db_error)?;
        let changed = if retain {
            let params: [&(dyn ToSql + Sync); 3] = [&lease.id.0, &lease.token, &result];
            self.run
                .execute(&tx, &self.sql.complete_retain, &params)
                .await?
        } else {
            let params: [&(dyn ToSql + Sync); 2] = [&lease.id.0, &lease.token];
            self.run.execute(&tx, &self.sql.complete, &params).await?
        };
        if changed != 1 {
            return Err(lease_lost(lease));
        }
        crate::failpoint::hit("inside-completion");
        let ids = super::transactional::insert_prepared(
            &tx,
            &self.run,
            &self.sql,
            &self.channel,
            follow_ups,
        )
        .await?;
        tx.commit().await.map_err(db_error)?;
        Ok(ids)
    }

    /// Whether a completion of `lease` with `expected` follow-ups
    /// committed before its connection was lost: its task is gone, or
    /// succeeded under this lease.
    async fn left_by_lost(
        &self,
        client: &deadpool_postgres::ClientWrapper,
        lease: LeaseRef,
        expected: usize,
    ) -> Result<Left> {
        let ids = vec![lease.id.0];
        let task = self.run.query(client, &self.sql.completed, &[&ids]).await?;
        let committed = match task.first() {
            None => true,
            Some(row) => {
                let state: String = row.try_get(1).map_err(db_error)?;
                let token: i64 = row.try_get(2).map_err(db_error)?;
                state == "succeeded" && token == lease.token
            }
        };
        if !committed {
            return Ok(Left::Nothing);
        }
        let rows = self
            .run
            .query(client, &self.sql.follow_ups, &[&lease.id.0])
            .await?;
        let ids = rows
            .iter()
            .map(|row| {
                Ok(Enqueued {
                    id: crate::names::TaskId(row.try_get(0).map_err(db_error)?),
                    duplicate: false,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(if ids.len() == expected {
            Left::Committed(ids)
        } else {
            Left::Unnamed
        })
    }
}
