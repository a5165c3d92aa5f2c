//! Rows as tasks and ids.

use tokio_postgres::Row;

use super::error::db_error;
use crate::attempt::{attempts_from_json, worker_from_json};
use crate::error::Result;
use crate::micros;
use crate::names::TaskId;
use crate::state::State;
use crate::task::{NewTask, Task};
use crate::unique::states_of_bits;

/// A row of `taskq_tasks`, in the column order of the statements (a
/// claimed task has no result: see [`read_stored_task`]).
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
            priority: row.try_get(14)?,
            unique_states: match row.try_get::<_, Option<String>>(15)? {
                Some(_) => states_of_bits(row.try_get(16)?),
                None => Vec::new(),
            },
            unique_key: row.try_get(15)?,
            unique_window: row.try_get(17)?,
            cancel_requested: row.try_get(18)?,
            started_at: row.try_get(19)?,
            worker: worker_from_json(row.try_get::<_, Option<&str>>(20)?),
            attempts: attempts_from_json(row.try_get::<_, Option<&str>>(21)?),
            concurrency_key: row.try_get(22)?,
            result: None,
            waiting_on: 0,
        })
    };
    read().map_err(db_error)
}

/// A row of `task_get.sql` or `task_list.sql`, which also select the
/// result (column 23) and how many dependencies it waits for (24).
pub(super) fn read_stored_task(row: &Row) -> Result<Task> {
    let mut task = read_task(row)?;
    task.result = row.try_get(23).map_err(db_error)?;
    task.waiting_on = row.try_get(24).map_err(db_error)?;
    Ok(task)
}

/// Which of `tasks` an insert's rows (id, action, unique key, unique
/// slot; in id order, so in the order given) are: each task's id, or
/// `None` for a task that was not inserted because another held its
/// unique key. A task without a key is always inserted; a task with one
/// is the next row if that row has its action and key, and a window when
/// the task has a period (an earlier task of the batch with the same key
/// is refused when this one is, so the rows cannot be mistaken).
pub(super) fn inserted(tasks: &[NewTask], rows: &[Row]) -> Result<Vec<Option<TaskId>>> {
    let mut rows = rows.iter().peekable();
    let mut ids = Vec::with_capacity(tasks.len());
    for task in tasks {
        let key = task.options.unique.as_ref().map(|u| u.key.as_str());
        let next = match rows.peek() {
            Some(row) => {
                let action: &str = row.try_get(1).map_err(db_error)?;
                let row_key: Option<&str> = row.try_get(2).map_err(db_error)?;
                let slot: Option<std::time::SystemTime> = row.try_get(3).map_err(db_error)?;
                let period = task.options.unique.as_ref().and_then(|u| u.period);
                action == task.action && row_key == key && slot.is_some() == period.is_some()
            }
            None => false,
        };
        if next || key.is_none() {
            let row = rows.next().ok_or_else(|| {
                crate::error::Error::other("an insert returned fewer rows than it inserted")
            })?;
            ids.push(Some(TaskId(row.try_get(0).map_err(db_error)?)));
        } else {
            ids.push(None);
        }
    }
    Ok(ids)
}
