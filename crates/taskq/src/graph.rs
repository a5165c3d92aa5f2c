//! Workflows through the queue: enqueueing a [`Workflow`], reading a
//! task's links, and retrying a task with the dependents its end
//! cancelled.

use crate::error::Result;
use crate::names::TaskId;
use crate::queue::Queue;
use crate::unique::RetryKey;
use crate::workflow::{Links, Workflow, WorkflowEnqueued};

impl Queue {
    /// Enqueues the tasks of `workflow` in one transaction, all or none:
    /// the tasks without dependencies are queued, the others wait until
    /// their dependencies have succeeded. Says what became of each task,
    /// by its name in the workflow.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> taskq::Result<()> {
    /// use taskq::{NewTask, State, Workflow};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let queue = taskq::Queue::connect(&dir.path().join("tasks.db").display().to_string()).await?;
    /// let mut album = Workflow::new();
    /// for n in 0..3 {
    ///     album.add(&format!("resize-{n}"), NewTask::json("resize", &n)?, &[])?;
    /// }
    /// album.add("build", NewTask::json("album", &"cats")?, &["resize-0", "resize-1", "resize-2"])?;
    /// let ids = queue.enqueue_workflow(album).await?;
    ///
    /// let build = queue.get(ids.id("build").unwrap()).await?.unwrap();
    /// assert_eq!((build.state, build.waiting_on), (State::Waiting, 3));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn enqueue_workflow(&self, workflow: Workflow) -> Result<WorkflowEnqueued> {
        let (names, tasks) = workflow.split();
        let results = self.enqueue_many(tasks).await?;
        Ok(WorkflowEnqueued::of(names, results))
    }

    /// Queues a failed or cancelled task again, as [`retry`](Self::retry)
    /// does, and with it the dependents its end cancelled, down the graph:
    /// they wait for it again, with their tries reset. A dependent that
    /// another failed dependency cancelled too stays cancelled (unless it
    /// runs anyway); retry that dependency as well.
    pub async fn retry_with_dependents(&self, id: TaskId) -> Result<()> {
        self.backend().task_retry(id, RetryKey::Keep, true).await
    }

    /// The dependencies and dependents of task `id`, each with its state
    /// now (`None` once it no longer exists) and how it ended for the
    /// dependent. Empty lists for a task without any, or no such task.
    pub async fn links(&self, id: TaskId) -> Result<Links> {
        self.backend().task_links(id).await
    }
}
