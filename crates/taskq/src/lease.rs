//! A claimed task and what its worker can do with it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;

use crate::backend::{Extended, FailTo};
use crate::error::Result;
use crate::names::TaskId;
use crate::options::validate_duration;
use crate::queue::Queue;
use crate::result::TaskResult;
use crate::state::State;
use crate::task::{
    due_actions, follow_ups_of, storable_text, CompletionRef, LeaseRef, NewTask, Task,
};
use crate::unique::Enqueued;

/// What happened to a task after [`Lease::fail`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// It will run again after this wait.
    Retrying {
        /// The backoff before the next try.
        after: Duration,
    },
    /// Its tries are used up: it is [`State::Failed`](crate::State::Failed)
    /// and stays for inspection.
    Failed,
    /// Its cancellation had been asked for: it is
    /// [`State::Cancelled`](crate::State::Cancelled), and does not run
    /// again unless retried.
    Cancelled,
}

/// What [`Lease::complete_checked`] did.
pub(crate) enum Completion {
    /// Completed, with what became of the follow-ups.
    Completed(Vec<Enqueued>),
    /// A follow-up was invalid: the try was failed with `error` instead.
    Refused {
        /// Why the follow-ups were refused.
        error: crate::Error,
        /// What the failed try did to the task.
        outcome: FailOutcome,
    },
}

/// A task claimed with an exclusive lease.
///
/// Finish it with [`complete`](Lease::complete),
/// [`fail`](Lease::fail) or [`release`](Lease::release), and call
/// [`extend`](Lease::extend) while working longer than the task's timeout.
/// A lease that is dropped unfinished simply expires, and the task runs
/// again after its timeout.
#[derive(Debug)]
#[must_use = "a lease that is not completed, failed or released runs again after it expires"]
pub struct Lease {
    // Shared with the worker runtime's task context, without copying the
    // payload.
    task: Arc<Task>,
    queue: Queue,
    /// Its action has limits: ending the task frees a slot.
    limited: bool,
}

impl Lease {
    pub(crate) fn new(task: Task, queue: Queue) -> Self {
        Lease {
            task: Arc::new(task),
            queue,
            limited: false,
        }
    }

    /// The lease, marked as one of a limited action.
    pub(crate) fn limited(mut self) -> Self {
        self.limited = true;
        self
    }

    /// After the task ended (or was given back): a slot of its limited
    /// action is free, and the workers waiting for one hear of it.
    fn freed(&self) {
        if self.limited {
            self.queue.wake(std::slice::from_ref(&self.task.action));
            self.queue.backend().announce_freed(&self.task.action);
        }
    }

    /// The task, as claimed (state running, tries already counted).
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.task.id
    }

    /// The fencing token of this claim.
    pub fn token(&self) -> i64 {
        self.task.lease_token
    }

    /// The id and token, for the transactional calls of a backend.
    pub fn lease_ref(&self) -> LeaseRef {
        LeaseRef {
            id: self.task.id,
            token: self.task.lease_token,
        }
    }

    /// When the lease ends unless extended.
    pub fn expires(&self) -> SystemTime {
        self.task
            .expires
            .expect("a claimed task always has a lease end")
    }

    /// The task, shared (for the worker runtime's task context).
    pub(crate) fn shared_task(&self) -> Arc<Task> {
        Arc::clone(&self.task)
    }

    /// The raw payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.task.payload
    }

    /// The payload decoded from JSON into `T`.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T> {
        self.task.payload_json()
    }

    /// The queue this lease came from.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Completes the task: it is removed (or kept as succeeded when the
    /// queue retains completed tasks).
    pub async fn complete(self) -> Result<()> {
        self.complete_with(Vec::new()).await.map(drop)
    }

    /// Completes the task and enqueues `follow_ups` in the same
    /// transaction, each recording this task as its parent: they exist if
    /// and only if the completion committed. Returns what became of each
    /// (a follow-up whose unique key another task holds is a duplicate).
    ///
    /// The follow-ups are checked first. If one is invalid (an empty
    /// action name, say), nothing is completed: the try is failed with
    /// that error as its reason, as [`fail`](Lease::fail) would (so the
    /// task runs again after the backoff, or fails for good on its last
    /// try, and its last error says why), and the error is returned.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// use taskq::NewTask;
    ///
    /// queue.enqueue("resize", &"cat.png").await?;
    /// let lease = queue.claim("resize").await?.expect("a task");
    /// let resized = lease.id();
    /// let ids = lease.complete_with(vec![NewTask::json("upload", &"cat-small.png")?]).await?;
    /// assert_eq!(queue.get(ids[0].id).await?.unwrap().parent, Some(resized));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn complete_with(self, follow_ups: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        match self.complete_checked(follow_ups, None).await? {
            Completion::Completed(ids) => Ok(ids),
            Completion::Refused { error, .. } => Err(error),
        }
    }

    /// Completes the task with its `result`, and `follow_ups` as in
    /// [`complete_with`](Lease::complete_with). The task is kept as
    /// succeeded with the result, whether or not the queue keeps completed
    /// tasks, until retention removes it; read it back with
    /// [`Task::result_json`](crate::Task::result_json).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// use taskq::TaskResult;
    ///
    /// let id = queue.enqueue("resize", &"cat.png").await?;
    /// let lease = queue.claim("resize").await?.expect("a task");
    /// lease.complete_with_result(TaskResult::json(&"cat-small.png")?, Vec::new()).await?;
    /// let task = queue.get(id).await?.expect("kept with its result");
    /// assert_eq!(task.result_json::<String>()?.as_deref(), Some("cat-small.png"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn complete_with_result(
        self,
        result: TaskResult,
        follow_ups: Vec<NewTask>,
    ) -> Result<Vec<Enqueued>> {
        match self.complete_checked(follow_ups, Some(result)).await? {
            Completion::Completed(ids) => Ok(ids),
            Completion::Refused { error, .. } => Err(error),
        }
    }

    /// [`complete_with`](Lease::complete_with) or
    /// [`complete_with_result`](Lease::complete_with_result), saying what
    /// became of the task when a follow-up was invalid.
    pub(crate) async fn complete_checked(
        self,
        follow_ups: Vec<NewTask>,
        result: Option<TaskResult>,
    ) -> Result<Completion> {
        let follow_ups = match follow_ups_of(self.task.id, follow_ups) {
            Ok(follow_ups) => follow_ups,
            Err(error) => {
                let reason = format!("the completion's follow-up tasks were refused: {error}");
                let outcome = self.fail(reason).await?;
                return Ok(Completion::Refused { error, outcome });
            }
        };
        let due = due_actions(&follow_ups);
        let retain = result.is_some() || self.retains();
        let result = result.map(TaskResult::into_bytes);
        let ids = self
            .queue
            .backend()
            .task_complete(self.lease_ref(), follow_ups, retain, result)
            .await?;
        self.queue.wake(&due);
        self.freed();
        Ok(Completion::Completed(ids))
    }

    /// Whether completing keeps the task as succeeded: the queue retains
    /// completed tasks, or the task's unique key must see it.
    fn retains(&self) -> bool {
        self.queue.config().retain_completed || self.task.key_keeps_completed()
    }

    /// Records a failed try with `reason` as the task's last error. With
    /// tries left the task is queued again after an exponential backoff;
    /// otherwise it fails for good. A task whose cancellation was asked for
    /// while it ran ends [cancelled](FailOutcome::Cancelled) instead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// use taskq::{FailOutcome, NewTask};
    ///
    /// let id = queue.enqueue_task(NewTask::json("email", &"ada@example.com")?.max_tries(2)).await?.id;
    /// let lease = queue.claim("email").await?.expect("a task");
    /// let outcome = lease.fail("the mail server timed out").await?;
    /// assert!(matches!(outcome, FailOutcome::Retrying { .. }));
    /// let task = queue.get(id).await?.unwrap();
    /// assert_eq!(task.last_error.as_deref(), Some("the mail server timed out"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn fail(self, reason: impl std::fmt::Display) -> Result<FailOutcome> {
        let to = if self.task.is_last_try() {
            FailTo::Fail
        } else {
            FailTo::Retry(self.queue.config().backoff.delay(self.task.tries))
        };
        let reason = storable_text(reason.to_string());
        let state = self
            .queue
            .backend()
            .task_fail(self.lease_ref(), &reason, to)
            .await?;
        self.freed();
        Ok(match (state, to) {
            (State::Cancelled, _) => FailOutcome::Cancelled,
            (State::Queued, FailTo::Retry(after)) => FailOutcome::Retrying { after },
            _ => FailOutcome::Failed,
        })
    }

    /// Fails the task for good whatever tries it has left, for errors that
    /// no retry can fix. (A task whose cancellation was asked for ends
    /// cancelled.)
    pub async fn fail_permanently(self, reason: impl std::fmt::Display) -> Result<()> {
        let reason = storable_text(reason.to_string());
        self.queue
            .backend()
            .task_fail(self.lease_ref(), &reason, FailTo::Fail)
            .await?;
        self.freed();
        Ok(())
    }

    /// Ends the task [cancelled](State::Cancelled), with `reason` as its
    /// last error: it does not run again unless retried.
    pub async fn cancel(self, reason: impl std::fmt::Display) -> Result<()> {
        let reason = storable_text(reason.to_string());
        self.queue
            .backend()
            .task_fail(self.lease_ref(), &reason, FailTo::Cancel)
            .await?;
        self.freed();
        Ok(())
    }

    /// Moves the lease end to `by` from now (a heartbeat). Fails with
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) if the task was taken over.
    /// The worker runtime does this by itself while a handler runs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// use std::time::Duration;
    ///
    /// queue.enqueue("video", &"cat.mp4").await?;
    /// let mut lease = queue.claim("video").await?.expect("a task");
    /// let before = lease.expires();
    /// lease.extend(Duration::from_secs(600)).await?; // ten more minutes of work
    /// assert!(lease.expires() > before);
    /// lease.complete().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn extend(&mut self, by: Duration) -> Result<SystemTime> {
        validate_duration("extend", by, false)?;
        let extended = self
            .queue
            .backend()
            .task_extend(self.lease_ref(), by)
            .await?;
        Arc::make_mut(&mut self.task).expires = Some(extended.expires);
        Ok(extended.expires)
    }

    /// Extends the lease by `by` from now without changing this value's
    /// copy of its end: the worker runtime's heartbeat, while the handler
    /// holds the task. Says whether its cancellation was asked for.
    pub(crate) async fn heartbeat(&self, by: Duration) -> Result<Extended> {
        self.queue.backend().task_extend(self.lease_ref(), by).await
    }

    /// Gives the task back at once without counting the try, for a
    /// graceful shutdown. It keeps its place in line. (A task whose
    /// cancellation was asked for ends cancelled instead.)
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// let id = queue.enqueue("email", &"ada@example.com").await?;
    /// let lease = queue.claim("email").await?.expect("a task");
    /// lease.release().await?;
    /// let again = queue.claim("email").await?.expect("ready again at once");
    /// assert_eq!((again.id(), again.task().tries), (id, 1), "the try was given back");
    /// again.complete().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn release(self) -> Result<()> {
        let state = self
            .queue
            .backend()
            .task_release(self.lease_ref(), Duration::ZERO)
            .await?;
        if state == State::Queued {
            self.queue.wake(std::slice::from_ref(&self.task.action));
        }
        self.freed();
        Ok(())
    }

    /// Gives the task back to run again after `delay`, without counting
    /// the try: "not now, later". (A task whose cancellation was asked for
    /// ends cancelled instead.)
    pub async fn snooze(self, delay: Duration) -> Result<()> {
        validate_duration("snooze", delay, true)?;
        self.queue
            .backend()
            .task_release(self.lease_ref(), delay)
            .await?;
        self.freed();
        Ok(())
    }
}

impl From<&Lease> for LeaseRef {
    fn from(lease: &Lease) -> Self {
        lease.lease_ref()
    }
}

impl From<&Lease> for CompletionRef {
    fn from(lease: &Lease) -> Self {
        CompletionRef {
            lease: lease.lease_ref(),
            retain: lease.retains(),
        }
    }
}
