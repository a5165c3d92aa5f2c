//! Control over tasks on one SQLite connection: unique-key holders,
//! retries, cancellation and paused actions.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::db_error;
use super::statements::state_of;
use crate::backend::CancelTarget;
use crate::error::{DatabaseErrorKind, Error, Result};
use crate::names::TaskId;
use crate::state::{CancelOutcome, State};
use crate::unique::RetryKey;

/// The task that holds `key` among the tasks of `action`, in a state its
/// key counts or in the period window starting at `slot`.
pub(super) fn key_holder(
    conn: &Connection,
    action: &str,
    key: &str,
    slot: Option<i64>,
) -> Result<TaskId> {
    conn.prepare_cached(include_str!("sql/task_unique_holder.sql"))
        .and_then(|mut s| {
            s.query_row(params![action, key, slot], |row| row.get(0))
                .optional()
        })
        .map_err(db_error)?
        .map(TaskId)
        .ok_or_else(|| {
            Error::other("an insert was refused for its unique key, but no task holds it")
        })
}

/// Queues a failed or cancelled task again (see `Backend::task_retry`).
pub(crate) fn retry(conn: &Connection, now: i64, id: TaskId, key: &RetryKey) -> Result<()> {
    let (mode, new_key) = match key {
        RetryKey::Keep => (0, None),
        RetryKey::Replace(key) => (1, Some(key.as_str())),
        RetryKey::Clear => (2, None),
    };
    let retried = conn
        .prepare_cached(include_str!("sql/task_retry.sql"))
        .and_then(|mut s| {
            s.query_row(params![id.0, now, mode, new_key], |row| {
                row.get::<_, String>(0)
            })
            .optional()
        })
        .map_err(db_error);
    match retried {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => {}
        Err(error) if error.database_kind() == Some(DatabaseErrorKind::UniqueViolation) => {
            return Err(duplicate_of_retry(conn, id, key)?);
        }
        Err(error) => return Err(error),
    }
    match state_of(conn, id)? {
        None => Err(Error::TaskNotFound { id }),
        Some(actual) => Err(Error::WrongState {
            id,
            actual,
            expected: State::Failed,
        }),
    }
}

/// The error of a retry that another task's unique key refused.
fn duplicate_of_retry(conn: &Connection, id: TaskId, key: &RetryKey) -> Result<Error> {
    let (action, kept_key): (String, Option<String>) = conn
        .query_row(
            "SELECT action, unique_key FROM taskq_tasks WHERE id = ?1",
            params![id.0],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(db_error)?;
    let key = match key {
        RetryKey::Replace(key) => key.clone(),
        _ => kept_key.unwrap_or_default(),
    };
    let existing = key_holder(conn, &action, &key, None)?;
    Ok(Error::Duplicate {
        id,
        action,
        key,
        existing,
    })
}

/// Cancels the tasks of `target` (see `Backend::task_cancel`).
pub(crate) fn cancel(
    conn: &Connection,
    now: i64,
    target: &CancelTarget,
) -> Result<Vec<(TaskId, CancelOutcome)>> {
    let (id, action, state) = match target {
        CancelTarget::Id(id) => (Some(*id), None, None),
        CancelTarget::Key { action, key } => {
            let holder: Option<i64> = conn
                .prepare_cached(include_str!("sql/task_cancel_key.sql"))
                .and_then(|mut s| {
                    s.query_row(params![action, key], |row| row.get(0))
                        .optional()
                })
                .map_err(db_error)?;
            match holder {
                Some(id) => (Some(TaskId(id)), None, None),
                None => return Ok(Vec::new()),
            }
        }
        CancelTarget::State { action, state } => (None, Some(action.as_str()), Some(*state)),
    };
    let target_sql = if id.is_some() {
        "id = ?1"
    } else {
        "action = ?1 AND state = ?3"
    };
    let sql = include_str!("sql/task_cancel.sql").replace("{target}", target_sql);
    let first: &dyn rusqlite::ToSql = match (&id, &action) {
        (Some(id), _) => &id.0,
        (None, action) => action,
    };
    let mut statement = conn.prepare_cached(&sql).map_err(db_error)?;
    let bind_state = state.map(State::as_str);
    let rows = if id.is_some() {
        statement.query_map(params![first, now], read_cancelled)
    } else {
        statement.query_map(params![first, now, bind_state], read_cancelled)
    }
    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
    .map_err(db_error)?;
    let mut done: Vec<(TaskId, CancelOutcome)> = rows;
    if let (Some(id), true) = (id, done.is_empty()) {
        match state_of(conn, id)? {
            None => return Err(Error::TaskNotFound { id }),
            Some(state) => done.push((id, CancelOutcome::AlreadyFinished(state))),
        }
    }
    done.sort_by_key(|(id, _)| *id);
    Ok(done)
}

/// One row of `task_cancel.sql`.
fn read_cancelled(row: &rusqlite::Row<'_>) -> rusqlite::Result<(TaskId, CancelOutcome)> {
    let state: String = row.get(1)?;
    let outcome = if state == "running" {
        CancelOutcome::Requested
    } else {
        CancelOutcome::Cancelled
    };
    Ok((TaskId(row.get(0)?), outcome))
}

/// Pauses `action`; false if it already was.
pub(crate) fn pause(conn: &Connection, now: i64, action: &str) -> Result<bool> {
    conn.prepare_cached(include_str!("sql/task_pause.sql"))
        .and_then(|mut s| s.execute(params![action, now]))
        .map(|changed| changed == 1)
        .map_err(db_error)
}

/// Resumes `action`; false if it was not paused.
pub(crate) fn resume(conn: &Connection, action: &str) -> Result<bool> {
    conn.prepare_cached(include_str!("sql/task_resume.sql"))
        .and_then(|mut s| s.execute(params![action]))
        .map(|changed| changed == 1)
        .map_err(db_error)
}

/// The paused actions, sorted.
pub(crate) fn paused(conn: &Connection) -> Result<Vec<String>> {
    conn.prepare_cached(include_str!("sql/task_paused.sql"))
        .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
        .map_err(db_error)
}
