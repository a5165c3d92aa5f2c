//! Completions that arrive together share one statement and one commit:
//! while a batch is being committed the next one gathers. Each caller
//! hears back only after the commit that holds its completion.

use std::collections::HashSet;
use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{db_error, lease_lost, pool_error};
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

/// The statements: delete, or mark succeeded when retained.
pub(super) struct CompleteSql {
    pub(super) delete: String,
    pub(super) retain: String,
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
        execute(&pool, &sql.delete, delete).await;
        execute(&pool, &sql.retain, retain).await;
    }
}

async fn execute(pool: &Pool, sql: &str, mut jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    // The same lock order in every batch.
    jobs.sort_by_key(|job| job.lease.id);
    let ids: Vec<i64> = jobs.iter().map(|job| job.lease.id.0).collect();
    let tokens: Vec<i64> = jobs.iter().map(|job| job.lease.token).collect();
    crate::failpoint::hit("before-commit");
    let result = async {
        let client = pool.get().await.map_err(pool_error)?;
        let statement = client.prepare_cached(sql).await.map_err(db_error)?;
        client
            .query(&statement, &[&ids, &tokens])
            .await
            .map_err(db_error)
    }
    .await;
    match result {
        Ok(rows) => {
            let done: HashSet<i64> = rows.iter().filter_map(|row| row.try_get(0).ok()).collect();
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
