//! Enqueue and complete through any driver (see [`crate::prepared`]): the
//! statements of the transactional twins, as text and values.

use std::sync::Arc;

use super::config::{channel, validate_schema};
use super::statements::{InsertColumns, Sql};
use super::transactional::COUNTED_BY_TRIGGERS_AGAIN;
use crate::error::Result;
use crate::prepared::{Dialect, Expect, Prepared, Step, Value};
use crate::task::{due_actions, follow_ups_of, CompletionRef, LeaseRef, NewTask};

/// Enqueues `tasks` in the taskq tables of `schema` through any driver,
/// all or none, as the steps of a [`Prepared`] operation, run inside the
/// caller's transaction (see [`crate::prepared`]). A batch without unique
/// keys is one insert; with them, each task is its own insert (and a
/// look-up of the holder of a key that is taken). The same results as
/// [`enqueue_many_in`](super::enqueue_many_in).
pub fn prepare_enqueue(schema: &str, tasks: Vec<NewTask>) -> Result<Prepared> {
    validate_schema(schema)?;
    tasks.iter().try_for_each(NewTask::validate)?;
    crate::workflow::refuse_dependencies(&tasks)?;
    Ok(Prepared::new(
        Box::new(PostgresSteps::new(schema)),
        None,
        tasks,
    ))
}

/// Completes a leased task with `follow_ups` through any driver, as the
/// steps of a [`Prepared`] operation run inside the caller's transaction,
/// fenced like [`complete_in`](super::complete_in): if the lease was lost,
/// [`Prepared::answer`] returns [`Error::LeaseLost`](crate::Error::LeaseLost)
/// (roll the transaction back then). Pass the `&Lease`.
pub fn prepare_complete(
    schema: &str,
    lease: impl Into<CompletionRef>,
    follow_ups: Vec<NewTask>,
) -> Result<Prepared> {
    validate_schema(schema)?;
    let CompletionRef { lease, retain } = lease.into();
    let follow_ups = follow_ups_of(lease.id, follow_ups)?;
    crate::workflow::refuse_dependencies(&follow_ups)?;
    let steps = Box::new(PostgresSteps::new(schema));
    Ok(Prepared::new(steps, Some((lease, retain)), follow_ups))
}

/// The steps in PostgreSQL's statements.
struct PostgresSteps {
    sql: Arc<Sql>,
    channel: String,
}

impl PostgresSteps {
    fn new(schema: &str) -> Self {
        PostgresSteps {
            sql: Sql::shared(schema),
            channel: channel(schema),
        }
    }
}

impl Dialect for PostgresSteps {
    fn complete(&self, lease: LeaseRef, retain: bool) -> Step {
        let mut params = vec![
            Value::Int8(Some(lease.id.0)),
            Value::Int8(Some(lease.token)),
        ];
        let sql = if retain {
            params.push(Value::Bytes(None));
            &self.sql.complete_retain
        } else {
            &self.sql.complete
        };
        Step::new(sql.as_str(), params, Expect::Count)
    }

    fn batches(&self, tasks: &[NewTask]) -> bool {
        // With unique keys, one at a time: a refused key is looked up.
        tasks.iter().all(|task| task.options.unique.is_none())
    }

    fn insert_all(&self, tasks: &[NewTask]) -> Step {
        let c = InsertColumns::new(tasks);
        let texts = |column: &[&str]| column.iter().map(|s| Some((*s).to_owned())).collect();
        let keys = |column: &[Option<&str>]| column.iter().map(|s| s.map(str::to_owned)).collect();
        let params = vec![
            Value::TextArray(texts(&c.actions)),
            Value::BytesArray(c.payloads.iter().map(|p| p.to_vec()).collect()),
            Value::Int8Array(c.run_at),
            Value::Int8Array(c.delays),
            Value::Int4Array(c.max_tries),
            Value::Int8Array(c.timeouts.into_iter().map(Some).collect()),
            Value::Int8Array(c.parents),
            Value::Int2Array(c.priorities),
            Value::TextArray(keys(&c.keys)),
            Value::Int2Array(c.key_states),
            Value::Int8Array(c.periods),
            Value::TextArray(keys(&c.concurrency_keys)),
        ];
        Step::new(self.sql.insert_many.as_str(), params, Expect::Ids)
    }

    fn insert_one(&self, task: &NewTask) -> Step {
        let c = InsertColumns::new(std::slice::from_ref(task));
        let text = |s: Option<&str>| Value::Text(s.map(str::to_owned));
        let params = vec![
            text(Some(c.actions[0])),
            Value::Bytes(Some(c.payloads[0].to_vec())),
            Value::Int8(c.run_at[0]),
            Value::Int8(c.delays[0]),
            Value::Int4(Some(c.max_tries[0])),
            Value::Int8(Some(c.timeouts[0])),
            Value::Int8(c.parents[0]),
            Value::Int2(Some(c.priorities[0])),
            text(c.keys[0]),
            Value::Int2(Some(c.key_states[0])),
            Value::Int8(c.periods[0]),
            text(c.concurrency_keys[0]),
        ];
        let sql = self.sql.insert_for(std::slice::from_ref(task), false);
        Step::new(sql, params, Expect::Ids)
    }

    fn holder(&self, task: &NewTask) -> Step {
        let unique = task.options.unique.as_ref();
        let params = vec![
            Value::TextArray(vec![Some(task.action.clone())]),
            Value::TextArray(vec![unique.map(|u| u.key.clone())]),
            Value::Int8Array(vec![unique.and_then(crate::Unique::period_micros)]),
        ];
        Step::new(self.sql.unique_holders.as_str(), params, Expect::Ids)
    }

    fn inserts_per_task(&self) -> usize {
        1 + super::control::INSERT_AGAIN
    }

    fn finally(&self, tasks: &[NewTask], batched: bool, retained: bool) -> Vec<Step> {
        let mut steps = Vec::new();
        let due = due_actions(tasks);
        if !due.is_empty() {
            let params = vec![
                Value::Text(Some(self.channel.clone())),
                Value::TextArray(due.into_iter().map(Some).collect()),
            ];
            steps.push(Step::new(self.sql.notify.as_str(), params, Expect::Count));
        }
        if batched || retained {
            // The batch insert and the retained completion set it.
            steps.push(Step::new(
                COUNTED_BY_TRIGGERS_AGAIN,
                Vec::new(),
                Expect::Count,
            ));
        }
        steps
    }
}
