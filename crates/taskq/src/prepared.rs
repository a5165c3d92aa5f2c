//! Enqueue and complete through any database driver: taskq hands over
//! each statement as SQL text and bound values, the driver runs it on the
//! caller's connection and hands back what it returned.
//!
//! taskq's own twins take `rusqlite` and `tokio-postgres` connections
//! (and `sqlx` ones, with the feature `sqlx`). For any other driver
//! (diesel, diesel-async, sea-orm, ...), a [`Prepared`] operation from
//! `taskq::postgres::prepare_enqueue` or `taskq::sqlite::prepare_enqueue`
//! (and their `prepare_complete`) says what to run, one [`Step`] at a
//! time, because what comes next can depend on the answer (a task refused
//! for its unique key is followed by a look-up of the task holding it):
//!
//! ```
//! use taskq::prepared::{Answer, Expect, Prepared, Value};
//!
//! /// Runs every step on the driver's connection, inside the caller's
//! /// transaction; `run_ids` and `run_count` stand for the driver.
//! fn run(
//!     mut prepared: Prepared,
//!     mut run_ids: impl FnMut(&str, &[Value]) -> Result<Vec<Option<i64>>, taskq::Error>,
//!     mut run_count: impl FnMut(&str, &[Value]) -> Result<u64, taskq::Error>,
//! ) -> Result<Vec<taskq::Enqueued>, taskq::Error> {
//!     while let Some(step) = prepared.next_step() {
//!         let answer = match step.expect() {
//!             Expect::Ids => Answer::Ids(run_ids(step.sql(), step.params())?),
//!             Expect::Count => Answer::Count(run_count(step.sql(), step.params())?),
//!         };
//!         prepared.answer(answer)?;
//!     }
//!     prepared.finish()
//! }
//! ```
//!
//! The rules for the driver:
//! - Run every step on the same connection, inside one transaction (the
//!   caller's): the steps of an operation are all or nothing only there.
//!   If a step or [`Prepared::finish`] fails, roll the transaction back.
//! - Bind the [`Value`]s in order, as the statement's parameters `$1`,
//!   `$2`, ... (PostgreSQL) or `?1`, `?2`, ... (SQLite), each with the
//!   type its variant names; every statement casts its parameters, so a
//!   driver that declares a parameter's type from the Rust value is fine.
//! - For [`Expect::Ids`], read the column `id` (a nullable 64-bit
//!   integer, always the first) of every row, in order; for
//!   [`Expect::Count`], the number of rows the statement changed or
//!   returned (what `execute` gives in every driver).
//! - Nothing is left to do after the commit: on PostgreSQL the wake-up of
//!   idle workers is a `NOTIFY` among the steps, which the server delivers
//!   when the transaction commits (and drops when it rolls back); SQLite
//!   workers see the commit in the database file.

use std::fmt;

use crate::error::{Error, Result};
use crate::names::TaskId;
use crate::task::{LeaseRef, NewTask};
use crate::unique::Enqueued;

/// A value bound to one parameter of a [`Step`]. SQLite's steps use only
/// the scalar variants; PostgreSQL's use the arrays too (bind them as
/// PostgreSQL arrays of the element type).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// Text, or NULL.
    Text(Option<String>),
    /// Bytes (`bytea`, a SQLite blob), or NULL.
    Bytes(Option<Vec<u8>>),
    /// A 64-bit integer (`bigint`), or NULL.
    Int8(Option<i64>),
    /// A 32-bit integer (`integer`), or NULL.
    Int4(Option<i32>),
    /// A 16-bit integer (`smallint`), or NULL.
    Int2(Option<i16>),
    /// A `text[]` whose elements may be NULL.
    TextArray(Vec<Option<String>>),
    /// A `bytea[]`.
    BytesArray(Vec<Vec<u8>>),
    /// A `bigint[]` whose elements may be NULL.
    Int8Array(Vec<Option<i64>>),
    /// An `integer[]`.
    Int4Array(Vec<i32>),
    /// A `smallint[]`.
    Int2Array(Vec<i16>),
}

/// What the driver hands back after running a [`Step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The `id` column of every row the statement returned
    /// ([`Answer::Ids`]).
    Ids,
    /// The number of rows the statement changed or returned
    /// ([`Answer::Count`]).
    Count,
}

/// One statement to run: its SQL text, its values in order, and what to
/// hand back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    sql: String,
    params: Vec<Value>,
    expect: Expect,
}

impl Step {
    /// A step (for the backends).
    pub(crate) fn new(sql: impl Into<String>, params: Vec<Value>, expect: Expect) -> Self {
        Step {
            sql: sql.into(),
            params,
            expect,
        }
    }

    /// The statement, with taskq's schema filled in.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The values of its parameters, in order.
    pub fn params(&self) -> &[Value] {
        &self.params
    }

    /// What to hand back to [`Prepared::answer`].
    pub fn expect(&self) -> Expect {
        self.expect
    }

    /// The statement and its values, for a driver that takes them by value.
    pub fn into_parts(self) -> (String, Vec<Value>) {
        (self.sql, self.params)
    }
}

/// What a [`Step`] returned, as its [`Step::expect`] asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The `id` column of each row returned, in order.
    Ids(Vec<Option<i64>>),
    /// The number of rows changed or returned.
    Count(u64),
}

/// How a backend writes each step (see `backend/*/prepared.rs`).
pub(crate) trait Dialect: Send + Sync {
    /// The fenced completion of `lease`, answered with a count of 1 when
    /// the lease still held.
    fn complete(&self, lease: LeaseRef, retain: bool) -> Step;
    /// Whether [`insert_all`](Dialect::insert_all) can insert `tasks` in
    /// one statement; otherwise they are inserted one at a time.
    fn batches(&self, tasks: &[NewTask]) -> bool;
    /// One statement inserting all of `tasks` (when
    /// [`batches`](Dialect::batches) says so), answered with their ids in
    /// order.
    fn insert_all(&self, tasks: &[NewTask]) -> Step;
    /// Inserts `task`, answered with its id, or no id when its unique key
    /// is taken.
    fn insert_one(&self, task: &NewTask) -> Step;
    /// The task holding `task`'s unique key, answered with its id, or no
    /// id if none holds it any more.
    fn holder(&self, task: &NewTask) -> Step;
    /// How often a task is inserted before its key is taken for good: a
    /// holder found gone (it finished in between) frees the key again.
    fn inserts_per_task(&self) -> usize;
    /// What runs last (wake-ups, and the end of a transaction's settings),
    /// given whether [`Dialect::insert_all`] or a retained completion ran.
    fn finally(&self, tasks: &[NewTask], batched: bool, retained: bool) -> Vec<Step>;
}

/// Where an operation stands: what its next step is, given the answers
/// so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Complete,
    Batch,
    Insert { task: usize, tries: usize },
    Holder { task: usize, tries: usize },
    Finally(usize),
    Done,
}

/// An enqueue or a completion to run through any driver, one [`Step`] at a
/// time (see the [module docs](self)): call [`next_step`](Self::next_step),
/// run it, hand its result to [`answer`](Self::answer), until there are no
/// more steps; then [`finish`](Self::finish) says what was enqueued.
pub struct Prepared {
    dialect: Box<dyn Dialect>,
    lease: Option<(LeaseRef, bool)>,
    tasks: Vec<NewTask>,
    done: Vec<Option<Enqueued>>,
    finally: Vec<Step>,
    /// Whether the tasks go in as one statement ([`Dialect::batches`]).
    batched: bool,
    at: At,
    failed: Option<Error>,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("lease", &self.lease)
            .field("tasks", &self.tasks.len())
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// An operation of validated `tasks`, after the completion of `lease`
    /// (with whether it keeps the task) if there is one.
    pub(crate) fn new(
        dialect: Box<dyn Dialect>,
        lease: Option<(LeaseRef, bool)>,
        tasks: Vec<NewTask>,
    ) -> Self {
        let batched = !tasks.is_empty() && dialect.batches(&tasks);
        let retained = lease.is_some_and(|(_, retain)| retain);
        let finally = dialect.finally(&tasks, batched, retained);
        let at = match (lease, batched) {
            (Some(_), _) => At::Complete,
            (None, true) => At::Batch,
            (None, false) => At::Insert { task: 0, tries: 0 },
        };
        let mut prepared = Prepared {
            dialect,
            lease,
            done: vec![None; tasks.len()],
            tasks,
            finally,
            batched,
            at,
            failed: None,
        };
        prepared.settle();
        prepared
    }

    /// The next statement to run, or `None` when the operation has run to
    /// its end (or failed: [`finish`](Self::finish) says). Asking again
    /// before answering gives the same step.
    pub fn next_step(&self) -> Option<Step> {
        if self.failed.is_some() {
            return None;
        }
        match self.at {
            At::Complete => self
                .lease
                .map(|(lease, retain)| self.dialect.complete(lease, retain)),
            At::Batch => Some(self.dialect.insert_all(&self.tasks)),
            At::Insert { task, .. } => Some(self.dialect.insert_one(&self.tasks[task])),
            At::Holder { task, .. } => Some(self.dialect.holder(&self.tasks[task])),
            At::Finally(i) => self.finally.get(i).cloned(),
            At::Done => None,
        }
    }

    /// Takes what the last step returned. An answer of the wrong kind, or
    /// one that contradicts the statement (more ids than tasks, say), is
    /// an error, and so is a completion whose lease was lost
    /// ([`Error::LeaseLost`]): roll the transaction back then.
    pub fn answer(&mut self, answer: Answer) -> Result<()> {
        let result = self.take(answer);
        if let Err(error) = &result {
            self.failed = Some(again(error));
        }
        result
    }

    /// What became of each task, in order, once every step has run: added,
    /// or a duplicate naming the task that holds its unique key.
    pub fn finish(self) -> Result<Vec<Enqueued>> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.at != At::Done {
            return Err(Error::other(
                "a prepared operation was finished before its last step ran",
            ));
        }
        Ok(self.done.into_iter().flatten().collect())
    }

    fn take(&mut self, answer: Answer) -> Result<()> {
        match (self.at, answer) {
            (At::Complete, Answer::Count(1)) => self.at = self.first_insert(),
            (At::Complete, Answer::Count(_)) => {
                let (lease, _) = self.lease.ok_or_else(|| Error::other("no lease"))?;
                return Err(Error::LeaseLost {
                    id: lease.id,
                    token: lease.token,
                });
            }
            (At::Batch, Answer::Ids(ids)) => {
                if ids.len() != self.tasks.len() || ids.iter().any(Option::is_none) {
                    return Err(Error::other(
                        "an insert returned other ids than one per task",
                    ));
                }
                self.done = ids
                    .into_iter()
                    .map(|id| id.map(|id| Enqueued::new(TaskId(id))))
                    .collect();
                self.at = At::Finally(0);
            }
            (At::Insert { task, tries }, Answer::Ids(ids)) => match one_id(&ids)? {
                Some(id) => self.next_task(task, Enqueued::new(TaskId(id))),
                None if self.tasks[task].options.unique.is_some() => {
                    self.at = At::Holder {
                        task,
                        tries: tries + 1,
                    }
                }
                None => {
                    return Err(Error::other(
                        "an insert of a task without a unique key was refused",
                    ))
                }
            },
            (At::Holder { task, tries }, Answer::Ids(ids)) => match one_id(&ids)? {
                Some(id) => self.next_task(task, Enqueued::duplicate_of(TaskId(id))),
                None if tries < self.dialect.inserts_per_task() => {
                    self.at = At::Insert { task, tries }
                }
                None => {
                    return Err(Error::other(
                        "a task's unique key stayed taken, but no task was found holding it",
                    ))
                }
            },
            (At::Finally(i), _) => self.at = At::Finally(i + 1),
            (At::Done, _) => return Err(Error::other("an answer came after the last step")),
            (_, answer) => {
                return Err(Error::other(format!(
                    "the answer {answer:?} is not of the kind the step expects"
                )))
            }
        }
        self.settle();
        Ok(())
    }

    /// Where the inserts begin, after the completion.
    fn first_insert(&self) -> At {
        if self.tasks.is_empty() {
            At::Finally(0)
        } else if self.batched {
            At::Batch
        } else {
            At::Insert { task: 0, tries: 0 }
        }
    }

    fn next_task(&mut self, task: usize, enqueued: Enqueued) {
        self.done[task] = Some(enqueued);
        self.at = At::Insert {
            task: task + 1,
            tries: 0,
        };
    }

    /// Moves past the steps there is nothing to run for.
    fn settle(&mut self) {
        loop {
            self.at = match self.at {
                At::Insert { task, .. } if task >= self.tasks.len() => At::Finally(0),
                At::Finally(i) if i >= self.finally.len() => At::Done,
                _ => return,
            };
        }
    }
}

/// The error [`Prepared::finish`] gives again after [`Prepared::answer`]
/// gave `error` (taskq's errors are not `Clone`: their sources need not
/// be).
fn again(error: &Error) -> Error {
    match error {
        Error::LeaseLost { id, token } => Error::LeaseLost {
            id: *id,
            token: *token,
        },
        other => Error::other(other.to_string()),
    }
}

/// The one id an insert or look-up returned, if any.
fn one_id(ids: &[Option<i64>]) -> Result<Option<i64>> {
    match ids {
        [] => Ok(None),
        [id] => Ok(*id),
        _ => Err(Error::other("a statement for one task returned many rows")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps named by what they do, one task at a time, with inserts
    /// again as on PostgreSQL.
    struct Named;

    impl Dialect for Named {
        fn complete(&self, _: LeaseRef, _: bool) -> Step {
            Step::new("complete", Vec::new(), Expect::Count)
        }
        fn batches(&self, _: &[NewTask]) -> bool {
            false
        }
        fn insert_all(&self, _: &[NewTask]) -> Step {
            unreachable!("Named inserts one task at a time")
        }
        fn insert_one(&self, task: &NewTask) -> Step {
            Step::new(format!("insert {}", task.action), Vec::new(), Expect::Ids)
        }
        fn holder(&self, task: &NewTask) -> Step {
            Step::new(format!("holder {}", task.action), Vec::new(), Expect::Ids)
        }
        fn inserts_per_task(&self) -> usize {
            2
        }
        fn finally(&self, _: &[NewTask], _: bool, _: bool) -> Vec<Step> {
            vec![Step::new("notify", Vec::new(), Expect::Count)]
        }
    }

    fn keyed(action: &str) -> NewTask {
        NewTask::raw(action, "1").unique_key("k")
    }

    fn sql(prepared: &Prepared) -> Option<String> {
        prepared.next_step().map(|step| step.sql().to_owned())
    }

    #[test]
    fn a_taken_key_is_looked_up_and_a_gone_holder_frees_it_again() {
        let lease = LeaseRef {
            id: TaskId(7),
            token: 3,
        };
        let mut p = Prepared::new(
            Box::new(Named),
            Some((lease, false)),
            vec![keyed("a"), keyed("b")],
        );
        assert_eq!(sql(&p).as_deref(), Some("complete"));
        assert_eq!(
            sql(&p).as_deref(),
            Some("complete"),
            "the same step until answered"
        );
        p.answer(Answer::Count(1)).unwrap();
        p.answer(Answer::Ids(vec![Some(10)])).unwrap();
        assert_eq!(sql(&p).as_deref(), Some("insert b"));
        p.answer(Answer::Ids(vec![])).unwrap();
        assert_eq!(sql(&p).as_deref(), Some("holder b"));
        p.answer(Answer::Ids(vec![None])).unwrap();
        assert_eq!(
            sql(&p).as_deref(),
            Some("insert b"),
            "the holder finished: again"
        );
        p.answer(Answer::Ids(vec![])).unwrap();
        p.answer(Answer::Ids(vec![Some(4)])).unwrap();
        assert_eq!(sql(&p).as_deref(), Some("notify"));
        p.answer(Answer::Count(0)).unwrap();
        assert_eq!(sql(&p), None);
        let done = p.finish().unwrap();
        assert_eq!(
            done,
            vec![Enqueued::new(TaskId(10)), Enqueued::duplicate_of(TaskId(4))]
        );
    }

    #[test]
    fn lost_leases_wrong_answers_and_early_finishes_are_errors() {
        let lease = LeaseRef {
            id: TaskId(7),
            token: 3,
        };
        let mut p = Prepared::new(Box::new(Named), Some((lease, false)), Vec::new());
        assert!(matches!(
            p.answer(Answer::Count(0)),
            Err(Error::LeaseLost { .. })
        ));
        assert_eq!(sql(&p), None, "no step after a failure");
        assert!(matches!(p.finish(), Err(Error::LeaseLost { .. })));

        let mut p = Prepared::new(Box::new(Named), None, vec![keyed("a")]);
        assert!(p.answer(Answer::Count(1)).is_err(), "ids were asked for");
        assert!(p.finish().is_err());

        let p = Prepared::new(Box::new(Named), None, vec![keyed("a")]);
        assert!(p.finish().is_err(), "finished before its steps ran");

        let mut p = Prepared::new(Box::new(Named), None, vec![keyed("a")]);
        p.answer(Answer::Ids(vec![])).unwrap();
        p.answer(Answer::Ids(vec![None])).unwrap();
        p.answer(Answer::Ids(vec![])).unwrap();
        assert!(
            p.answer(Answer::Ids(vec![None])).is_err(),
            "the key stayed taken"
        );

        let mut p = Prepared::new(Box::new(Named), None, vec![NewTask::raw("plain", "1")]);
        assert!(
            p.answer(Answer::Ids(vec![])).is_err(),
            "refused without a key"
        );
        let mut p = Prepared::new(Box::new(Named), None, vec![keyed("a")]);
        assert!(p.answer(Answer::Ids(vec![Some(1), Some(2)])).is_err());
    }
}
