//! Retrying and deleting every task a filter of `list` matches, a page at
//! a time.

use crate::error::{Error, Result};
use crate::names::TaskId;
use crate::options::ListOptions;
use crate::queue::Queue;

/// How many tasks one page of a bulk retry or delete reads.
const PAGE: u32 = 1_000;

/// What [`Queue::retry_matching`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetriedMany {
    /// The tasks queued again.
    pub retried: Vec<TaskId>,
    /// The tasks that stayed because another task holds their unique key.
    pub refused_for_their_key: Vec<TaskId>,
}

/// What one task of a bulk operation came to.
enum Each {
    Done,
    /// Stayed for its unique key.
    Refused,
    /// Gone or moved meanwhile.
    Skipped,
}

impl Queue {
    /// Applies `op` to every task that `filter` matches, a page at a time,
    /// and returns the tasks it did and those it refused. Each page starts
    /// after the last task of the one before: tasks the operation moved
    /// out of the filter are gone from it, those it left are behind.
    async fn each_matching<F, Fut>(
        &self,
        filter: &ListOptions,
        op: F,
    ) -> Result<(Vec<TaskId>, Vec<TaskId>)>
    where
        F: Fn(TaskId) -> Fut,
        Fut: std::future::Future<Output = Result<Each>>,
    {
        let (mut done, mut refused) = (Vec::new(), Vec::new());
        let mut page = ListOptions {
            after: None,
            limit: PAGE,
            ..filter.clone()
        };
        loop {
            let tasks = self.list(&page).await?;
            let Some(last) = tasks.last() else {
                return Ok((done, refused));
            };
            page.after = Some(last.id);
            for task in tasks {
                match op(task.id).await? {
                    Each::Done => done.push(task.id),
                    Each::Refused => refused.push(task.id),
                    Each::Skipped => {}
                }
            }
        }
    }

    /// Retries every task that `filter` matches (as [`Queue::retry`]
    /// does), a page of [`list`](Queue::list) at a time; the filter's
    /// `after` and `limit` are ignored. The filter must name the state
    /// failed or cancelled, the states a retry applies to. A task retried
    /// or deleted by someone else meanwhile is skipped. Returns what was
    /// retried and what stayed for its unique key.
    pub async fn retry_matching(&self, filter: &ListOptions) -> Result<RetriedMany> {
        match filter.state {
            Some(state) if state.is_finished() && state != crate::State::Succeeded => {}
            _ => {
                return Err(Error::invalid(
                    "state",
                    "a bulk retry needs the state failed or cancelled",
                ))
            }
        }
        let (retried, refused_for_their_key) = self
            .each_matching(filter, |id| async move {
                match self.retry(id).await {
                    Ok(()) => Ok(Each::Done),
                    Err(Error::Duplicate { .. }) => Ok(Each::Refused),
                    Err(Error::WrongState { .. } | Error::TaskNotFound { .. }) => Ok(Each::Skipped),
                    Err(error) => Err(error),
                }
            })
            .await?;
        Ok(RetriedMany {
            retried,
            refused_for_their_key,
        })
    }

    /// Deletes every task that `filter` matches (as [`Queue::delete`]
    /// does, in any state), a page of [`list`](Queue::list) at a time;
    /// the filter's `after` and `limit` are ignored. Returns the deleted
    /// tasks' ids. A task deleted by someone else meanwhile is skipped.
    pub async fn delete_matching(&self, filter: &ListOptions) -> Result<Vec<TaskId>> {
        let (deleted, _) = self
            .each_matching(filter, |id| async move {
                match self.delete(id).await {
                    Ok(()) => Ok(Each::Done),
                    Err(Error::TaskNotFound { .. }) => Ok(Each::Skipped),
                    Err(error) => Err(error),
                }
            })
            .await?;
        Ok(deleted)
    }
}
