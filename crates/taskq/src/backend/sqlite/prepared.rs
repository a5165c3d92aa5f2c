//! Enqueue and complete through any driver (see [`crate::prepared`]): the
//! statements of the transactional twins, as text and values.

use super::statements::{times, INSERT, INSERT_KEYED};
use crate::error::Result;
use crate::micros;
use crate::prepared::{Dialect, Expect, Prepared, Step, Value};
use crate::task::{follow_ups_of, CompletionRef, LeaseRef, NewTask};
use crate::unique::Unique;

/// Enqueues `tasks` through any driver, all or none, as the steps of a
/// [`Prepared`] operation, run inside the caller's transaction (see
/// [`crate::prepared`]; start it with `BEGIN IMMEDIATE`): one insert per
/// task, and a look-up of the holder of a unique key that is taken. The
/// same results as [`enqueue_many_in`](super::enqueue_many_in).
pub fn prepare_enqueue(tasks: Vec<NewTask>) -> Result<Prepared> {
    tasks.iter().try_for_each(NewTask::validate)?;
    crate::workflow::refuse_dependencies(&tasks)?;
    Ok(Prepared::new(Box::new(SqliteSteps::new()), None, tasks))
}

/// Completes a leased task with `follow_ups` through any driver, as the
/// steps of a [`Prepared`] operation run inside the caller's transaction,
/// fenced like [`complete_in`](super::complete_in): if the lease was lost,
/// [`Prepared::answer`] returns [`Error::LeaseLost`](crate::Error::LeaseLost)
/// (roll the transaction back then). Pass the `&Lease`.
pub fn prepare_complete(
    lease: impl Into<CompletionRef>,
    follow_ups: Vec<NewTask>,
) -> Result<Prepared> {
    let CompletionRef { lease, retain } = lease.into();
    let follow_ups = follow_ups_of(lease.id, follow_ups)?;
    crate::workflow::refuse_dependencies(&follow_ups)?;
    let steps = Box::new(SqliteSteps::new());
    Ok(Prepared::new(steps, Some((lease, retain)), follow_ups))
}

/// The steps in SQLite's statements, at the time the operation was
/// prepared (SQLite's times are the application's clock).
struct SqliteSteps {
    now: i64,
}

impl SqliteSteps {
    fn new() -> Self {
        SqliteSteps { now: micros::now() }
    }
}

impl Dialect for SqliteSteps {
    fn complete(&self, lease: LeaseRef, retain: bool) -> Step {
        let mut params = vec![
            Value::Int8(Some(lease.id.0)),
            Value::Int8(Some(lease.token)),
        ];
        let sql = if retain {
            params.push(Value::Int8(Some(self.now)));
            params.push(Value::Bytes(None));
            include_str!("sql/task_complete_retain.sql")
        } else {
            include_str!("sql/task_complete.sql")
        };
        Step::new(sql, params, Expect::Count)
    }

    fn batches(&self, _: &[NewTask]) -> bool {
        false
    }

    fn insert_all(&self, tasks: &[NewTask]) -> Step {
        // Never asked for (see `batches`): one insert per task, in order.
        self.insert_one(&tasks[0])
    }

    fn insert_one(&self, task: &NewTask) -> Step {
        let options = &task.options;
        let (not_before, slot) = times(self.now, task);
        let unique = options.unique.as_ref();
        let params = vec![
            Value::Text(Some(task.action.clone())),
            Value::Bytes(Some(task.payload.clone())),
            Value::Int8(Some(not_before)),
            Value::Int4(Some(options.max_tries)),
            Value::Int8(Some(micros::from_duration(options.timeout))),
            Value::Int8(options.parent.map(|p| p.0)),
            Value::Int8(Some(self.now)),
            Value::Int2(Some(options.priority)),
            Value::Text(unique.map(|u| u.key.clone())),
            Value::Int2(Some(unique.map_or(0, Unique::states_bits))),
            Value::Int8(slot),
            Value::Text(options.concurrency_key.clone()),
        ];
        let insert = if unique.is_some() {
            &INSERT_KEYED
        } else {
            &INSERT
        };
        Step::new(
            format!("{} RETURNING id", insert.trim_end()),
            params,
            Expect::Ids,
        )
    }

    fn holder(&self, task: &NewTask) -> Step {
        let (_, slot) = times(self.now, task);
        let key = task.options.unique.as_ref().map(|u| u.key.clone());
        let params = vec![
            Value::Text(Some(task.action.clone())),
            Value::Text(key),
            Value::Int8(slot),
        ];
        Step::new(
            include_str!("sql/task_unique_holder.sql"),
            params,
            Expect::Ids,
        )
    }

    fn inserts_per_task(&self) -> usize {
        // One writer at a time: a key found taken has a holder.
        1
    }

    fn finally(&self, _: &[NewTask], _: bool, _: bool) -> Vec<Step> {
        Vec::new()
    }
}
