//! Control over tasks in PostgreSQL: duplicates of unique keys, retries,
//! cancellation and paused actions.

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::error::db_error;
use super::rows::inserted;
use super::statements::Sql;
use super::PostgresBackend;
use crate::backend::CancelTarget;
use crate::error::{DatabaseErrorKind, Error, Result};
use crate::names::TaskId;
use crate::state::{CancelOutcome, State};
use crate::task::{ActionStats, NewTask};
use crate::unique::{Enqueued, RetryKey};

/// How often a duplicate whose holder finished before it was found is
/// inserted again before giving up.
pub(super) const INSERT_AGAIN: usize = 3;

/// The tasks an insert's rows are (see [`inserted`]), when every one was
/// inserted; `Err` with the ids otherwise, for [`enqueued`].
pub(super) fn all_inserted(
    tasks: &[NewTask],
    rows: &[Row],
) -> Result<std::result::Result<Vec<Enqueued>, Vec<Option<TaskId>>>> {
    let ids = inserted(tasks, rows)?;
    if ids.iter().all(Option::is_some) {
        return Ok(Ok(ids.into_iter().flatten().map(Enqueued::new).collect()));
    }
    Ok(Err(ids))
}

/// What became of each of `tasks`, given the ids their insert gave (see
/// [`all_inserted`]): the duplicates name the task holding their key,
/// looked up on `client`. A holder that finished in between leaves the
/// key free: the task is inserted again.
pub(super) async fn enqueued(
    client: &impl GenericClient,
    sql: &Sql,
    tasks: &[NewTask],
    ids: Vec<Option<TaskId>>,
) -> Result<Vec<Enqueued>> {
    let mut done: Vec<Option<Enqueued>> = ids.iter().map(|id| id.map(Enqueued::new)).collect();
    for _ in 0..INSERT_AGAIN {
        let open: Vec<usize> = (0..tasks.len()).filter(|&i| done[i].is_none()).collect();
        if open.is_empty() {
            break;
        }
        let holders = holders(client, sql, tasks, &open).await?;
        for (&i, holder) in open.iter().zip(holders) {
            done[i] = match holder {
                Some(holder) => Some(Enqueued::duplicate_of(holder)),
                None => insert_one(client, sql, &tasks[i]).await?,
            };
        }
    }
    done.into_iter()
        .map(|entry| {
            entry.ok_or_else(|| {
                Error::other("a task's unique key stayed taken, but no task was found holding it")
            })
        })
        .collect()
}

/// The holders of the unique keys of `tasks[i]` for each `i` of `open`.
pub(super) async fn holders(
    client: &impl GenericClient,
    sql: &Sql,
    tasks: &[NewTask],
    open: &[usize],
) -> Result<Vec<Option<TaskId>>> {
    let unique = |i: usize| tasks[i].options.unique.as_ref();
    let actions: Vec<&str> = open.iter().map(|&i| tasks[i].action.as_str()).collect();
    let keys: Vec<Option<&str>> = open
        .iter()
        .map(|&i| unique(i).map(|u| u.key.as_str()))
        .collect();
    let periods: Vec<Option<i64>> = open
        .iter()
        .map(|&i| unique(i).and_then(crate::Unique::period_micros))
        .collect();
    let rows = client
        .query(sql.unique_holders.as_str(), &[&actions, &keys, &periods])
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|row| {
            let id: Option<i64> = row.try_get(0).map_err(db_error)?;
            Ok(id.map(TaskId))
        })
        .collect()
}

/// Inserts one task again; `None` if its key is taken again.
async fn insert_one(
    client: &impl GenericClient,
    sql: &Sql,
    task: &NewTask,
) -> Result<Option<Enqueued>> {
    let one = std::slice::from_ref(task);
    let columns = super::statements::InsertColumns::new(one);
    let rows = client
        .query(sql.insert_keyed.as_str(), &columns.params_of(0))
        .await
        .map_err(db_error)?;
    Ok(inserted(one, &rows)?[0].map(Enqueued::new))
}

impl PostgresBackend {
    /// Queues a failed or cancelled task again, and its dependents as
    /// `Backend::task_retry` says, in one transaction.
    pub(super) async fn retry(&self, id: TaskId, key: RetryKey, dependents: bool) -> Result<()> {
        let (mode, new_key) = match &key {
            RetryKey::Keep => (0, None),
            RetryKey::Replace(key) => (1, Some(key.as_str())),
            RetryKey::Clear => (2, None),
        };
        let params: [&(dyn ToSql + Sync); 4] = [&id.0, &self.channel, &mode, &new_key];
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        match tx
            .query(self.sql.retry.as_str(), &params)
            .await
            .map_err(db_error)
        {
            Ok(rows) if !rows.is_empty() => {
                super::dependencies::reopen(&*tx, &self.sql, id, dependents).await?;
                return tx.commit().await.map_err(db_error);
            }
            Ok(_) => {}
            Err(error) if error.database_kind() == Some(DatabaseErrorKind::UniqueViolation) => {
                drop(tx);
                return Err(self.duplicate_of_retry(id, &key).await?);
            }
            Err(error) => return Err(error),
        }
        drop(tx);
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

    /// Deletes a task (see `Backend::task_delete`): one that other tasks
    /// wait for and that has not finished ends cancelled first, in the
    /// same transaction, so that they do not take its deletion for a
    /// completion.
    pub(super) async fn delete(&self, id: TaskId) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        tx.execute(self.sql.dependencies.abandon.as_str(), &[&id.0])
            .await
            .map_err(db_error)?;
        let deleted = tx
            .execute(self.sql.delete.as_str(), &[&id.0])
            .await
            .map_err(db_error)?;
        if deleted != 1 {
            return Err(Error::TaskNotFound { id });
        }
        tx.commit().await.map_err(db_error)
    }

    /// The error of a retry that another task's unique key refused.
    async fn duplicate_of_retry(&self, id: TaskId, key: &RetryKey) -> Result<Error> {
        let task = self
            .query(&self.sql.get, &[&id.0])
            .await?
            .first()
            .map(super::rows::read_task)
            .transpose()?
            .ok_or(Error::TaskNotFound { id })?;
        let key = match key {
            RetryKey::Replace(key) => key.clone(),
            _ => task.unique_key.clone().unwrap_or_default(),
        };
        let probe = NewTask::raw(task.action.clone(), Vec::new()).unique_key(key.clone());
        // In a transaction: behind a pooler, on one server connection.
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let found = holders(&*tx, &self.sql, std::slice::from_ref(&probe), &[0]).await?;
        tx.commit().await.map_err(db_error)?;
        let existing = found.into_iter().next().flatten().ok_or_else(|| {
            Error::other("a retry was refused for its unique key, but no task holds it")
        })?;
        Ok(Error::Duplicate {
            id,
            action: task.action,
            key,
            existing,
        })
    }

    /// Cancels the tasks of `target` (see `Backend::task_cancel`).
    pub(super) async fn cancel(
        &self,
        target: CancelTarget,
    ) -> Result<Vec<(TaskId, CancelOutcome)>> {
        self.wrote();
        let rows = match &target {
            CancelTarget::Id(id) => {
                self.query(&self.sql.cancel_id, &[&id.0, &self.channel])
                    .await?
            }
            CancelTarget::Key { action, key } => {
                let params: [&(dyn ToSql + Sync); 3] = [action, &self.channel, key];
                self.query(&self.sql.cancel_key, &params).await?
            }
            CancelTarget::State { action, state } => {
                let params: [&(dyn ToSql + Sync); 3] = [action, &self.channel, &state.as_str()];
                self.query(&self.sql.cancel_state, &params).await?
            }
        };
        let mut done = rows
            .iter()
            .map(|row| {
                let id = TaskId(row.try_get(0).map_err(db_error)?);
                let state: &str = row.try_get(1).map_err(db_error)?;
                let outcome = if state == "running" {
                    CancelOutcome::Requested
                } else {
                    CancelOutcome::Cancelled
                };
                Ok((id, outcome))
            })
            .collect::<Result<Vec<_>>>()?;
        if let (CancelTarget::Id(id), true) = (&target, done.is_empty()) {
            let rows = self.query(&self.sql.state, &[&id.0]).await?;
            let row = rows.first().ok_or(Error::TaskNotFound { id: *id })?;
            let state: State = row.try_get::<_, String>(0).map_err(db_error)?.parse()?;
            done.push((*id, CancelOutcome::AlreadyFinished(state)));
        }
        done.sort_by_key(|(id, _)| *id);
        Ok(done)
    }

    /// Pauses `action`; false if it already was.
    pub(super) async fn pause(&self, action: &str) -> Result<bool> {
        Ok(self.execute(&self.sql.pause, &[&action]).await? == 1)
    }

    /// Resumes `action`, waking listeners; false if it was not paused.
    pub(super) async fn resume(&self, action: &str) -> Result<bool> {
        let rows = self
            .query(&self.sql.resume, &[&action, &self.channel])
            .await?;
        Ok(!rows.is_empty())
    }

    /// Fills in the priorities of the queued tasks of each row of `stats`
    /// that has any, and the earliest not-before time that has come among
    /// them (two seeks of the ready index per priority).
    pub(super) async fn add_priorities(&self, stats: &mut [ActionStats]) -> Result<()> {
        if stats.iter().all(|row| row.queued == 0) {
            return Ok(());
        }
        let client = self.client().await?;
        let statement = self.run.ready(&client, &self.sql.priorities).await?;
        for row in stats.iter_mut().filter(|row| row.queued > 0) {
            let found = super::run::query(&client, &statement, &[&row.action]).await?;
            row.priorities = found
                .iter()
                .map(|p| p.try_get::<_, i16>(0).map_err(db_error))
                .collect::<Result<_>>()?;
            row.oldest_ready = found
                .iter()
                .map(|p| {
                    p.try_get::<_, Option<std::time::SystemTime>>(1)
                        .map_err(db_error)
                })
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .min();
        }
        Ok(())
    }

    /// The paused actions, sorted.
    pub(super) async fn paused(&self) -> Result<Vec<String>> {
        let rows = self.query(&self.sql.paused, &[]).await?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(db_error))
            .collect()
    }
}
