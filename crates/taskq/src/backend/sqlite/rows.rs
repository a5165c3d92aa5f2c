//! Rows as tasks.

use rusqlite::Row;

use crate::attempt::{attempts_from_json, worker_from_json};
use crate::micros;
use crate::names::TaskId;
use crate::state::State;
use crate::task::Task;
use crate::unique::states_of_bits;

/// A row of `taskq_tasks`, in the column order of the statements (a
/// claimed task has no result: see [`read_stored_task`]).
pub(super) fn read_task(row: &Row<'_>) -> rusqlite::Result<Task> {
    let state: String = row.get(3)?;
    let state = state.parse::<State>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Task {
        id: TaskId(row.get(0)?),
        action: row.get(1)?,
        payload: row.get(2)?,
        state,
        not_before: micros::to_time(row.get(4)?),
        tries: row.get(5)?,
        max_tries: row.get(6)?,
        timeout: micros::to_duration(row.get(7)?),
        expires: row.get::<_, Option<i64>>(8)?.map(micros::to_time),
        parent: row.get::<_, Option<i64>>(9)?.map(TaskId),
        last_error: row.get(10)?,
        created_at: micros::to_time(row.get(11)?),
        finished_at: row.get::<_, Option<i64>>(12)?.map(micros::to_time),
        lease_token: row.get(13)?,
        priority: row.get(14)?,
        unique_key: row.get(15)?,
        unique_states: unique_states(row.get::<_, Option<String>>(15)?.as_deref(), row.get(16)?),
        unique_window: row.get::<_, Option<i64>>(17)?.map(micros::to_time),
        cancel_requested: row.get::<_, Option<i64>>(18)?.map(micros::to_time),
        started_at: row.get::<_, Option<i64>>(19)?.map(micros::to_time),
        worker: worker_from_json(row.get::<_, Option<String>>(20)?.as_deref()),
        attempts: attempts_from_json(row.get::<_, Option<String>>(21)?.as_deref()),
        concurrency_key: row.get(22)?,
        result: None,
        waiting_on: 0,
    })
}

/// A row of `task_get.sql` or `task_list.sql`, which also select the
/// result (column 23) and how many dependencies it waits for (24).
pub(super) fn read_stored_task(row: &Row<'_>) -> rusqlite::Result<Task> {
    let mut task = read_task(row)?;
    task.result = row.get(23)?;
    task.waiting_on = row.get(24)?;
    Ok(task)
}

/// The states a task's unique key counts among: none without a key.
fn unique_states(key: Option<&str>, bits: i16) -> Vec<crate::State> {
    key.map(|_| states_of_bits(bits)).unwrap_or_default()
}
