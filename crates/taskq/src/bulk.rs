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

impl Queue {
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
        let mut done = RetriedMany::default();
        let mut page = ListOptions {
            after: None,
            limit: PAGE,
            ..filter.clone()
        };
        loop {
            // Retried tasks leave the state, so each page is fresh; one whose
            // key is taken stays, so the next page starts after it.
            let tasks = self.list(&page).await?;
            let Some(last) = tasks.last() else {
                return Ok(done);
            };
            page.after = Some(last.id);
            for task in tasks {
                match self.retry(task.id).await {
                    Ok(()) => done.retried.push(task.id),
                    Err(Error::Duplicate { .. }) => done.refused_for_their_key.push(task.id),
                    Err(Error::WrongState { .. } | Error::TaskNotFound { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
        }
    }

    /// Deletes every task that `filter` matches (as [`Queue::delete`]
    /// does, in any state), a page of [`list`](Queue::list) at a time;
    /// the filter's `after` and `limit` are ignored. Returns the deleted
    /// tasks' ids. A task deleted by someone else meanwhile is skipped.
    pub async fn delete_matching(&self, filter: &ListOptions) -> Result<Vec<TaskId>> {
        let mut deleted = Vec::new();
        let mut page = ListOptions {
            after: None,
            limit: PAGE,
            ..filter.clone()
        };
        loop {
            let tasks = self.list(&page).await?;
            let Some(last) = tasks.last() else {
                return Ok(deleted);
            };
            page.after = Some(last.id);
            for task in tasks {
                match self.delete(task.id).await {
                    Ok(()) => deleted.push(task.id),
                    Err(Error::TaskNotFound { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
        }
    }
}
