//! Rows as tasks and ids.

use tokio_postgres::Row;

use super::error::db_error;
use crate::error::Result;
use crate::micros;
use crate::names::TaskId;
use crate::state::State;
use crate::task::Task;

/// A row of `taskq_tasks`, in the column order of the statements.
pub(super) fn read_task(row: &Row) -> Result<Task> {
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
            timeout: micros::to_duration(row.try_get(7)?),
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

/// The ids of an insert's rows.
pub(super) fn ids(rows: &[Row]) -> Result<Vec<TaskId>> {
    rows.iter()
        .map(|row| row.try_get(0).map(TaskId).map_err(db_error))
        .collect()
}
