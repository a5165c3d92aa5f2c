//! Completions that arrive together share one statement and one commit:
//! while a batch is being committed the next one gathers. Each caller
//! hears back only after the commit that holds its completion.

use std::collections::HashSet;
use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::lease_lost;
use super::pool::{lost, query_detaching_lost as query};
use crate::error::{Error, Result};
use crate::task::LeaseRef;

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
    pub(super) fn spawn(pool: Pool, sql: CompleteSql) -> Self {
        let (jobs, inbox) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(pool, Arc::new(sql), inbox));
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

async fn run(pool: Pool, sql: Arc<CompleteSql>, mut inbox: mpsc::UnboundedReceiver<Job>) {
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
        execute(&pool, &sql.delete, &sql.completed, delete).await;
        execute(&pool, &sql.retain, &sql.completed, retain).await;
    }
}

/// Runs the completions of `jobs` in one statement; when the connection
/// is lost before the answer, once more on a fresh one (the lease tokens
/// make the repeat harmless), and then those the repeat found nothing for
/// count as completed if their task is gone or succeeded under the same
/// lease: the first statement applied them.
async fn execute(pool: &Pool, sql: &str, completed: &str, mut jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    // The same lock order in every batch.
    jobs.sort_by_key(|job| job.lease.id);
    let ids: Vec<i64> = jobs.iter().map(|job| job.lease.id.0).collect();
    let tokens: Vec<i64> = jobs.iter().map(|job| job.lease.token).collect();
    crate::failpoint::hit("before-commit");
    let params: [&(dyn ToSql + Sync); 2] = [&ids, &tokens];
    let result = match query(pool, sql, &params).await {
        Err(error) if lost(&error) => {
            tracing::warn!(%error, "the connection was lost during a batch of completions; trying it once more");
            match query(pool, sql, &params).await {
                Ok(rows) => {
                    let mut done = returned(&rows);
                    done.extend(applied_before(pool, completed, &jobs, &done).await);
                    Ok(done)
                }
                Err(error) => Err(error),
            }
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
/// the job's own lease. A look that fails finds none: their callers hear
/// that the lease was lost, and the tasks run again after it expires.
async fn applied_before(pool: &Pool, sql: &str, jobs: &[Job], done: &HashSet<i64>) -> Vec<i64> {
    let left: Vec<&Job> = jobs
        .iter()
        .filter(|job| !done.contains(&job.lease.id.0))
        .collect();
    if left.is_empty() {
        return Vec::new();
    }
    let ids: Vec<i64> = left.iter().map(|job| job.lease.id.0).collect();
    let found = match query(pool, sql, &[&ids]).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%error, "could not look at the completions a lost connection left unanswered");
            return Vec::new();
        }
    };
    let still: std::collections::HashMap<i64, (String, i64)> = found
        .iter()
        .filter_map(|row| {
            Some((
                row.try_get(0).ok()?,
                (row.try_get(1).ok()?, row.try_get(2).ok()?),
            ))
        })
        .collect();
    left.iter()
        .filter(|job| match still.get(&job.lease.id.0) {
            None => true,
            Some((state, token)) => state == "succeeded" && *token == job.lease.token,
        })
        .map(|job| job.lease.id.0)
        .collect()
}
