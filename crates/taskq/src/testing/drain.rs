//! A worker's ready tasks run inline, to completion, with what became of
//! each.

use crate::error::Result;
use crate::names::TaskId;
use crate::task::Task;
use crate::worker::metrics::Event;
use crate::worker::Worker;

/// The most runs one [`drain`] makes before it gives up.
pub const MAX_DRAIN_RUNS: usize = 10_000;

/// How one run of [`drain`] ended, as the worker recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ended {
    /// The task completed (and its follow-ups were enqueued).
    Completed,
    /// The try failed and the task waits for its next try.
    Retried,
    /// The task failed for good.
    Failed,
    /// The task ended cancelled.
    Cancelled,
    /// The handler put the task off for a while.
    Snoozed,
    /// The task was given back without its try counting.
    Released,
    /// Another claim had taken the task over; the result was discarded.
    LeaseLost,
    /// The result could not be recorded (a database error, logged): the
    /// task runs again when its lease expires.
    NotRecorded,
}

impl Ended {
    fn of(event: Option<Event>) -> Ended {
        match event {
            Some(Event::Completed) => Ended::Completed,
            Some(Event::Retried) => Ended::Retried,
            Some(Event::Failed) => Ended::Failed,
            Some(Event::Cancelled) => Ended::Cancelled,
            Some(Event::Snoozed) => Ended::Snoozed,
            Some(Event::Released) => Ended::Released,
            Some(Event::LeaseLost | Event::Refused) => Ended::LeaseLost,
            _ => Ended::NotRecorded,
        }
    }
}

/// One run of [`drain`].
#[derive(Clone, Debug)]
pub struct Run {
    /// The task as it was claimed for this run (its `tries` counts it).
    pub task: Task,
    /// How the run ended.
    pub ended: Ended,
    /// The error the run left on the task, when it did not complete
    /// (a retry's, a failure's or a cancellation's reason).
    pub error: Option<String>,
}

/// What [`drain`] ran, in the order it ran them.
#[derive(Clone, Debug, Default)]
pub struct Drained {
    /// Each run.
    pub runs: Vec<Run>,
}

impl Drained {
    /// How many runs ended so.
    pub fn ended(&self, ended: Ended) -> usize {
        self.runs.iter().filter(|run| run.ended == ended).count()
    }

    /// The runs of one task, oldest first.
    pub fn of_task(&self, id: TaskId) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(move |run| run.task.id == id)
    }

    /// The runs of one action, in the order they ran.
    pub fn of_action<'a>(&'a self, action: &'a str) -> impl Iterator<Item = &'a Run> {
        self.runs
            .iter()
            .filter(move |run| run.task.action == action)
    }
}

/// Runs every ready task of the actions `worker` handles, one at a time,
/// inline, until none is ready, and returns what became of each run.
///
/// Each run is what the worker's own would be: the payload decoded, the
/// lease extended while the handler runs, the outcome recorded (a
/// completion's follow-ups enqueued, a failure retried with its backoff).
/// Tasks that become ready meanwhile run too: follow-ups, and retries or
/// snoozes that are due at once. A task waiting for a later time does
/// not: move a manual clock on ([`TestDatabase::advance`]) and drain
/// again. The worker's schedules and retention do not run; its
/// concurrency does not apply (one run at a time).
///
/// [`Error::InvalidInput`](crate::Error::InvalidInput) past
/// [`MAX_DRAIN_RUNS`] runs, which only a task that keeps coming back due
/// at once reaches.
///
/// [`TestDatabase::advance`]: super::TestDatabase::advance
pub async fn drain(worker: &Worker) -> Result<Drained> {
    drain_at_most(worker, MAX_DRAIN_RUNS).await
}

/// [`drain`], giving up past `most` runs: the task that would have been
/// the next is given back without its try counting, and the error is
/// [`Error::InvalidInput`](crate::Error::InvalidInput).
pub async fn drain_at_most(worker: &Worker, most: usize) -> Result<Drained> {
    let runs = worker.run_ready_inline(most).await?;
    let runs = runs.into_iter().map(|run| Run {
        task: Task::clone(&run.task),
        ended: Ended::of(run.ended),
        error: run.error,
    });
    Ok(Drained {
        runs: runs.collect(),
    })
}
