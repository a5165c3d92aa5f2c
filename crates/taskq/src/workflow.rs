//! Dependencies between tasks: what a task waits for
//! ([`Dependency`]), a graph of new tasks that name each other
//! ([`Workflow`]), and what a task's links to others look like when read
//! back ([`Link`], [`Links`]).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::names::TaskId;
use crate::state::State;
use crate::task::NewTask;
use crate::unique::Enqueued;

/// The most dependencies one task may have.
pub const MAX_DEPENDENCIES: usize = 100_000;

/// A task another task waits for.
///
/// A task with dependencies is enqueued [waiting](State::Waiting) and
/// becomes queued in the transaction that finishes its last dependency.
/// When a dependency fails for good or is cancelled, the waiting task is
/// cancelled too (and so on down the graph), unless it was enqueued with
/// [`NewTask::run_if_dependencies_fail`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dependency {
    /// A task that already exists. One that no longer exists counts as
    /// succeeded: taskq removes a completed task unless it is kept
    /// (retention, a result, a unique key's finished states), and a task
    /// that was deleted or purged has no state left to wait for.
    Task(TaskId),
    /// The task at this position of the same batch, which must come
    /// earlier (so that no cycle can be built). A [`Workflow`] writes
    /// these from its names.
    Earlier(usize),
}

/// Checks the dependencies of the batch `tasks`: each points at an
/// existing task id or at an earlier task of the batch, and none is
/// given twice.
pub(crate) fn validate_batch(tasks: &[NewTask]) -> Result<()> {
    for (position, task) in tasks.iter().enumerate() {
        let depends_on = &task.options.depends_on;
        if depends_on.len() > MAX_DEPENDENCIES {
            return Err(Error::invalid(
                "depends_on",
                format!(
                    "{} dependencies is more than the limit of {MAX_DEPENDENCIES}",
                    depends_on.len()
                ),
            ));
        }
        for dependency in depends_on {
            match *dependency {
                Dependency::Task(id) if id.0 <= 0 => {
                    return Err(Error::invalid(
                        "depends_on",
                        format!("{id} is not a task id"),
                    ))
                }
                Dependency::Earlier(at) if at >= position => {
                    return Err(Error::invalid(
                        "depends_on",
                        format!(
                            "task {position} of the batch depends on task {at}, which does not \
                             come before it"
                        ),
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Refuses tasks with dependencies where they cannot be enqueued yet: the
/// steps of `taskq::prepared` (and so the sqlx twins) insert one task per
/// step without reading the states of other tasks.
pub(crate) fn refuse_dependencies(tasks: &[NewTask]) -> Result<()> {
    if tasks.iter().any(|task| !task.options.depends_on.is_empty()) {
        return Err(Error::invalid(
            "depends_on",
            "tasks with dependencies cannot be enqueued through prepared steps (or sqlx) yet; \
             enqueue them with Queue or the rusqlite and tokio-postgres twins",
        ));
    }
    Ok(())
}

/// The ids the dependencies of `task` name, once the tasks of its batch
/// before it are enqueued (`earlier`), without repeats. A dependency on
/// an earlier task that was a duplicate of its unique key is a
/// dependency on the task that holds the key.
pub(crate) fn resolve(task: &NewTask, earlier: &[Enqueued]) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(task.options.depends_on.len());
    for dependency in &task.options.depends_on {
        let id =
            match *dependency {
                Dependency::Task(id) => id.0,
                Dependency::Earlier(at) => earlier
                    .get(at)
                    .map(|enqueued| enqueued.id.0)
                    .ok_or_else(|| {
                        Error::invalid("depends_on", format!("no task {at} before it in the batch"))
                    })?,
            };
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// How a new task with dependencies starts, from the states its
/// dependencies are in (`None`: the task no longer exists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Start {
    /// Waiting, queued, or cancelled (a dependency failed and the task
    /// does not run anyway).
    pub(crate) state: State,
    /// How many dependencies have not finished.
    pub(crate) waiting_on: i32,
    /// The reason of a cancelled start.
    pub(crate) reason: Option<String>,
}

impl Start {
    /// The start of a task whose dependencies are `found` (id and state,
    /// `None` for a task that is gone).
    pub(crate) fn of(found: &[(i64, Option<State>)], run_anyway: bool) -> Start {
        let waiting_on = found
            .iter()
            .filter(|(_, state)| state.is_some_and(|s| !s.is_finished()))
            .count() as i32;
        let failed = found
            .iter()
            .find(|(_, state)| matches!(state, Some(State::Failed | State::Cancelled)));
        match failed {
            Some((id, Some(state))) if !run_anyway => Start {
                state: State::Cancelled,
                waiting_on,
                reason: Some(format!("cancelled: its dependency {id} {}", ended(*state))),
            },
            _ if waiting_on > 0 => Start {
                state: State::Waiting,
                waiting_on,
                reason: None,
            },
            _ => Start {
                state: State::Queued,
                waiting_on: 0,
                reason: None,
            },
        }
    }
}

/// How a dependency's end reads in a cancelled dependent's reason.
fn ended(state: State) -> &'static str {
    match state {
        State::Cancelled => "was cancelled",
        _ => "failed",
    }
}

/// The outcome a dependency's edge records when the task ends in `state`
/// (`None` while it may still run).
pub(crate) fn outcome_of(state: Option<State>) -> Option<&'static str> {
    match state {
        None | Some(State::Succeeded) => Some("succeeded"),
        Some(State::Failed) => Some("failed"),
        Some(State::Cancelled) => Some("cancelled"),
        Some(_) => None,
    }
}

/// New tasks that depend on each other, by names local to the workflow,
/// enqueued together in one transaction, all or none
/// ([`Queue::enqueue_workflow`](crate::Queue::enqueue_workflow), or
/// [`into_tasks`](Self::into_tasks) for the transactional twins).
///
/// A task may depend only on tasks added before it (or on existing tasks
/// through [`NewTask::depends_on`]), so a workflow has no cycles.
///
/// ```
/// use taskq::{NewTask, Workflow};
///
/// let mut order = Workflow::new();
/// order.add("charge", NewTask::json("charge", &42)?, &[])?;
/// order.add("ship", NewTask::json("ship", &42)?, &["charge"])?;
/// order.add("email", NewTask::json("email", &42)?, &["charge"])?;
/// order.add("close", NewTask::json("close", &42)?, &["ship", "email"])?;
/// assert_eq!(order.len(), 4);
/// assert!(order.add("loop", NewTask::json("x", &1)?, &["later"]).is_err());
/// # Ok::<(), taskq::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Workflow {
    tasks: Vec<NewTask>,
    names: Vec<String>,
    positions: HashMap<String, usize>,
}

impl Workflow {
    /// An empty workflow.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `task` under `name`, depending on the tasks added before it
    /// under the names `after` (besides any dependencies it already has).
    /// [`Error::InvalidInput`] if the name is taken or empty, or one of
    /// `after` names no task added yet.
    pub fn add(&mut self, name: &str, mut task: NewTask, after: &[&str]) -> Result<&mut Self> {
        if name.is_empty() || name.len() > 255 {
            return Err(Error::invalid(
                "name",
                "a workflow's task names are 1 to 255 bytes",
            ));
        }
        if self.positions.contains_key(name) {
            return Err(Error::invalid(
                "name",
                format!("{name:?} is already a task of the workflow"),
            ));
        }
        for before in after {
            let at = *self.positions.get(*before).ok_or_else(|| {
                Error::invalid(
                    "depends_on",
                    format!("{before:?} is not a task added to the workflow before {name:?}"),
                )
            })?;
            task.options.depends_on.push(Dependency::Earlier(at));
        }
        self.positions.insert(name.to_owned(), self.tasks.len());
        self.names.push(name.to_owned());
        self.tasks.push(task);
        Ok(self)
    }

    /// How many tasks it has.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The names, in the order added.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The tasks, in the order added, their dependencies on each other
    /// as [`Dependency::Earlier`]: a batch for `enqueue_many` or the
    /// transactional twins' `enqueue_many_in`, whose results come in the
    /// same order as [`names`](Self::names).
    pub fn into_tasks(self) -> Vec<NewTask> {
        self.tasks
    }

    /// What became of each task, by name, from the results of enqueueing
    /// [`into_tasks`](Self::into_tasks) in order.
    pub fn enqueued(&self, results: Vec<Enqueued>) -> WorkflowEnqueued {
        WorkflowEnqueued::of(self.names.clone(), results)
    }

    /// The names and the tasks, in the order added.
    pub(crate) fn split(self) -> (Vec<String>, Vec<NewTask>) {
        (self.names, self.tasks)
    }
}

/// What became of each task of an enqueued [`Workflow`], by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowEnqueued {
    by_name: HashMap<String, Enqueued>,
}

impl WorkflowEnqueued {
    pub(crate) fn of(names: Vec<String>, results: Vec<Enqueued>) -> Self {
        WorkflowEnqueued {
            by_name: names.into_iter().zip(results).collect(),
        }
    }

    /// The task enqueued as `name` (or the holder of its unique key).
    pub fn get(&self, name: &str) -> Option<Enqueued> {
        self.by_name.get(name).copied()
    }

    /// The id of the task enqueued as `name`.
    pub fn id(&self, name: &str) -> Option<TaskId> {
        self.get(name).map(|enqueued| enqueued.id)
    }

    /// Every name with what became of its task.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Enqueued)> {
        self.by_name.iter().map(|(name, e)| (name.as_str(), *e))
    }
}

/// One link between a task and another: a dependency of it or a task that
/// depends on it, as [`Queue::links`](crate::Queue::links) reads them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Link {
    /// The other task.
    pub id: TaskId,
    /// Its action, `None` if it no longer exists.
    pub action: Option<String>,
    /// Its state now, `None` if it no longer exists.
    pub state: Option<State>,
    /// How the dependency ended as far as the dependent is concerned:
    /// succeeded, failed or cancelled; `None` while it may still run.
    pub outcome: Option<State>,
}

/// A task's dependencies and dependents.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Links {
    /// The tasks it waits for (or waited for), by id.
    pub dependencies: Vec<Link>,
    /// The tasks that wait for it (or waited), by id.
    pub dependents: Vec<Link>,
}

impl Links {
    /// Adds a row of a backend's links statement: a dependency (`kind`
    /// 0) or a dependent (1), the other task's id, its action and state
    /// if it still exists, and the edge's outcome.
    pub(crate) fn add_row(
        &mut self,
        kind: i64,
        id: i64,
        (action, state): (Option<String>, Option<String>),
        outcome: Option<String>,
    ) -> Result<()> {
        let link = Link {
            id: TaskId(id),
            action,
            state: state.map(|s| s.parse()).transpose()?,
            outcome: outcome.map(|s| s.parse()).transpose()?,
        };
        if kind == 0 {
            self.dependencies.push(link);
        } else {
            self.dependents.push(link);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_waits_for_what_may_still_run() {
        let found = [
            (1, Some(State::Running)),
            (2, None),
            (3, Some(State::Succeeded)),
        ];
        let start = Start::of(&found, false);
        assert_eq!((start.state, start.waiting_on), (State::Waiting, 1));
        let done = Start::of(&[(2, None)], false);
        assert_eq!((done.state, done.waiting_on), (State::Queued, 0));
    }

    #[test]
    fn a_failed_dependency_cancels_unless_it_runs_anyway() {
        let found = [(1, Some(State::Queued)), (2, Some(State::Failed))];
        let start = Start::of(&found, false);
        assert_eq!(start.state, State::Cancelled);
        assert_eq!(
            start.reason.as_deref(),
            Some("cancelled: its dependency 2 failed")
        );
        let anyway = Start::of(&found, true);
        assert_eq!((anyway.state, anyway.waiting_on), (State::Waiting, 1));
    }

    #[test]
    fn batches_point_only_backwards() {
        let mut first = NewTask::raw("a", "1");
        first.options.depends_on.push(Dependency::Earlier(0));
        assert!(validate_batch(&[first]).is_err());
        let mut second = NewTask::raw("a", "2");
        second.options.depends_on.push(Dependency::Earlier(0));
        assert!(validate_batch(&[NewTask::raw("a", "1"), second.clone()]).is_ok());
        let earlier = [Enqueued::new(TaskId(7))];
        second.options.depends_on.push(Dependency::Task(TaskId(3)));
        second.options.depends_on.push(Dependency::Task(TaskId(7)));
        assert_eq!(resolve(&second, &earlier).unwrap(), vec![3, 7]);
    }

    #[test]
    fn workflows_name_their_tasks_once() {
        let mut flow = Workflow::new();
        flow.add("a", NewTask::raw("x", "1"), &[]).unwrap();
        assert!(flow.add("a", NewTask::raw("x", "2"), &[]).is_err());
        flow.add("b", NewTask::raw("x", "3"), &["a", "a"]).unwrap();
        let tasks = flow.clone().into_tasks();
        assert_eq!(tasks[1].options.depends_on, vec![Dependency::Earlier(0); 2]);
        let ids = flow.enqueued(vec![Enqueued::new(TaskId(1)), Enqueued::new(TaskId(2))]);
        assert_eq!(ids.id("b"), Some(TaskId(2)));
    }
}
