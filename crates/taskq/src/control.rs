//! Control over tasks from the queue: cancel, pause and resume, limits,
//! retry with a new unique key.

use crate::backend::CancelTarget;
use crate::error::{Error, Result};
use crate::limits::{LimitInfo, Limits};
use crate::names::{validate_action, TaskId};
use crate::queue::Queue;
use crate::state::{CancelOutcome, State};
use crate::unique::{validate_key, RetryKey};

/// What [`Queue::cancel_many`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CancelledMany {
    /// Tasks that had not started and are cancelled now.
    pub cancelled: u64,
    /// Running tasks whose cancellation was asked for.
    pub requested: u64,
}

impl Queue {
    /// Cancels a task. One that has not started (queued, or snoozed and
    /// waiting for its time) ends [cancelled](State::Cancelled) at once
    /// and never runs. A running one gets its cancellation asked for: its
    /// handler hears it through [`TaskContext`](crate::worker::TaskContext)
    /// (at once in this process; on PostgreSQL in any other through
    /// `NOTIFY`, on SQLite within about 20 ms through the watch of the file;
    /// at its next heartbeat at the latest); if the handler still completes it, the
    /// completion stands, and anything else ends it cancelled, never
    /// retried. A finished task is left as it is.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// use taskq::{CancelOutcome, State};
    ///
    /// let id = queue.enqueue("email", &"ada@example.com").await?;
    /// assert_eq!(queue.cancel(id).await?, CancelOutcome::Cancelled);
    /// assert_eq!(queue.get(id).await?.unwrap().state, State::Cancelled);
    /// assert!(queue.claim("email").await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn cancel(&self, id: TaskId) -> Result<CancelOutcome> {
        let done = self.backend().task_cancel(CancelTarget::Id(id)).await?;
        self.tell_running(&done);
        done.first()
            .map(|(_, outcome)| *outcome)
            .ok_or(Error::TaskNotFound { id })
    }

    /// Cancels the task of `action` that holds the unique key `key` and
    /// may still run, as [`cancel`](Queue::cancel) does; `None` if no such
    /// task holds it.
    pub async fn cancel_key(
        &self,
        action: &str,
        key: &str,
    ) -> Result<Option<(TaskId, CancelOutcome)>> {
        validate_action(action)?;
        validate_key(key)?;
        let target = CancelTarget::Key {
            action: action.to_owned(),
            key: key.to_owned(),
        };
        let done = self.backend().task_cancel(target).await?;
        self.tell_running(&done);
        Ok(done.first().copied())
    }

    /// Cancels every task of `action` in `state`, [`State::Queued`] (they
    /// end cancelled) or [`State::Running`] (their cancellation is asked
    /// for), as [`cancel`](Queue::cancel) does, in one transaction.
    pub async fn cancel_many(&self, action: &str, state: State) -> Result<CancelledMany> {
        validate_action(action)?;
        if !matches!(state, State::Queued | State::Running) {
            return Err(Error::invalid(
                "state",
                format!("only queued or running tasks can be cancelled, not {state} ones"),
            ));
        }
        let target = CancelTarget::State {
            action: action.to_owned(),
            state,
        };
        let done = self.backend().task_cancel(target).await?;
        self.tell_running(&done);
        let requested = done
            .iter()
            .filter(|(_, outcome)| *outcome == CancelOutcome::Requested)
            .count() as u64;
        Ok(CancelledMany {
            cancelled: done.len() as u64 - requested,
            requested,
        })
    }

    /// Tells this process's running handlers of the tasks in `done` whose
    /// cancellation was asked for.
    fn tell_running(&self, done: &[(TaskId, CancelOutcome)]) {
        for (id, outcome) in done {
            if *outcome == CancelOutcome::Requested {
                self.wakeups().cancel_requested(*id);
            }
        }
    }

    /// Pauses `action` for every worker on every machine: nothing of it is
    /// claimed until it is [resumed](Queue::resume). Running tasks finish;
    /// enqueues still succeed. Returns false if it was paused already.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// queue.enqueue("email", &"ada@example.com").await?;
    /// queue.pause("email").await?;
    /// assert!(queue.claim("email").await?.is_none(), "paused");
    /// assert_eq!(queue.paused().await?, ["email"]);
    /// queue.resume("email").await?;
    /// assert!(queue.claim("email").await?.is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn pause(&self, action: &str) -> Result<bool> {
        validate_action(action)?;
        self.backend().task_pause(action).await
    }

    /// Sets the limits of `action` for every worker on every machine,
    /// replacing any it had; empty limits remove them. Claims made from
    /// then on keep to them (see [`Limits`]); running tasks go on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// use taskq::{Limits, NewTask};
    ///
    /// queue.set_limits("import", Limits::new().concurrency(2).per_key(1)).await?;
    /// for customer in ["ada", "ada", "bob"] {
    ///     queue.enqueue_task(NewTask::json("import", &customer)?.concurrency_key(customer)).await?;
    /// }
    /// // One of ada's and bob's: ada's second waits for her first.
    /// let claimed = queue.claim_many("import", 10).await?;
    /// assert_eq!(claimed.len(), 2);
    /// assert_eq!(queue.limits().await?[0].running, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn set_limits(&self, action: &str, limits: Limits) -> Result<()> {
        validate_action(action)?;
        limits.validate()?;
        if limits.is_empty() {
            self.clear_limits(action).await?;
            return Ok(());
        }
        self.backend().limit_set(action, limits).await?;
        // A raised limit may admit what waits.
        self.wake(&[action.to_owned()]);
        Ok(())
    }

    /// Removes the limits of `action` and wakes the workers waiting for
    /// it. Returns false if it had none.
    pub async fn clear_limits(&self, action: &str) -> Result<bool> {
        validate_action(action)?;
        let cleared = self.backend().limit_clear(action).await?;
        if cleared {
            self.wake(&[action.to_owned()]);
        }
        Ok(cleared)
    }

    /// Every limited action, by name, with its limits and how much of them
    /// is in use now: the slots taken, the rate's tokens, the busy keys.
    pub async fn limits(&self) -> Result<Vec<LimitInfo>> {
        self.backend().limit_list().await
    }

    /// Resumes a paused `action` and wakes the workers waiting for it.
    /// Returns false if it was not paused.
    pub async fn resume(&self, action: &str) -> Result<bool> {
        validate_action(action)?;
        let resumed = self.backend().task_resume(action).await?;
        if resumed {
            self.wake(&[action.to_owned()]);
        }
        Ok(resumed)
    }

    /// The paused actions, sorted.
    pub async fn paused(&self) -> Result<Vec<String>> {
        self.backend().task_paused().await
    }

    /// Queues a failed or cancelled task again, with its tries reset, to
    /// run now, keeping, replacing or clearing its unique key as `key`
    /// says. [`Error::Duplicate`] if another task holds the key it would
    /// have.
    pub async fn retry_with(&self, id: TaskId, key: RetryKey) -> Result<()> {
        if let RetryKey::Replace(key) = &key {
            validate_key(key)?;
        }
        self.backend().task_retry(id, key, false).await
    }
}
