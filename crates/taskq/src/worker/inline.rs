//! The ready tasks of a worker's actions run one at a time, inline, for
//! `taskq::testing::drain`: the same runs as the worker's (heartbeat,
//! outcome, follow-ups, retries), without claiming ahead or waiting.

use std::sync::Arc;

use super::metrics::Event;
use super::{runner, Shared, Slot, Worker};
use crate::error::{Error, Result};
use crate::task::Task;

/// One run of [`Worker::run_ready_inline`].
pub(crate) struct InlineRun {
    /// The task as claimed for the run.
    pub(crate) task: Arc<Task>,
    /// What was recorded (`None`: nothing could be).
    pub(crate) ended: Option<Event>,
    /// The error the run left on the task, when it did not complete.
    pub(crate) error: Option<String>,
}

impl Worker {
    /// Claims and runs the ready tasks of each registered action, one at a
    /// time, until none is ready (a run's follow-ups and retries due now
    /// run too); returns each run's task as claimed, what was recorded, and
    /// the error a try that did not complete left on the task (read before
    /// the next run, which may be the task's own next try).
    /// [`Error::InvalidInput`] when more than `most` runs would be needed
    /// (a task that keeps coming back due at once never ends).
    pub(crate) async fn run_ready_inline(&self, most: usize) -> Result<Vec<InlineRun>> {
        self.config.validate()?;
        let actions = self.registrations.iter().map(|r| r.action.as_str());
        let shared = Arc::new(Shared::new(
            self.queue.clone(),
            self.config.clone(),
            Arc::clone(&self.metrics),
            actions,
        ));
        let mut runs = Vec::new();
        loop {
            let before = runs.len();
            for registration in &self.registrations {
                loop {
                    let claimed = shared
                        .queue
                        .claim_many_as(&registration.action, 1, &shared.worker)
                        .await?;
                    let Some(lease) = claimed.into_iter().next() else {
                        break;
                    };
                    if runs.len() == most {
                        // Not run: it goes back to the queue, its try not counted.
                        lease.release().await?;
                        return Err(Error::invalid(
                            "drain",
                            format!("still tasks to run after {most} runs: a handler that snoozes or enqueues its own action without a delay never drains"),
                        ));
                    }
                    let slot = Slot {
                        _global: Arc::clone(&shared.slots)
                            .acquire_owned()
                            .await
                            .map_err(|_| Error::other("the worker's handler slots were closed"))?,
                        _action: None,
                    };
                    let task = lease.shared_task();
                    let handler = Arc::clone(&registration.handler);
                    let ended = runner::run(Arc::clone(&shared), handler, lease, slot).await;
                    let error = match ended {
                        Some(Event::Retried | Event::Failed | Event::Cancelled) => {
                            let now = self.queue.get(task.id).await?;
                            now.and_then(|now| now.last_error)
                        }
                        _ => None,
                    };
                    runs.push(InlineRun { task, ended, error });
                }
            }
            if runs.len() == before {
                return Ok(runs);
            }
        }
    }
}
