//! Folding of the task counts. taskq's statements append their changes
//! per action and state to `taskq_counts` (and triggers those of other
//! writers, row by row; see migration 0002); this task folds them into one
//! row per action and state every [`EVERY`] while the backend writes, so
//! that `len` and `stats` add up a few rows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::task::JoinHandle;

use super::execute_in_background;
use crate::backend::migration::checksum;

/// How often the counts are folded while tasks change.
const EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct Folder {
    changed: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for Folder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Folder {
    /// Starts folding the counts of `schema`; `sql` is the fold statement.
    pub(super) fn spawn(pool: Pool, sql: String, schema: &str) -> Self {
        // Other processes may have written since the last fold.
        let changed = Arc::new(AtomicBool::new(true));
        let key = checksum(&format!("taskq fold counts {schema}"));
        let seen = Arc::clone(&changed);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if !seen.swap(false, Ordering::Relaxed) {
                    continue;
                }
                // Counts are read correctly unfolded too: a failed fold
                // only leaves more rows to add up, until the next one.
                if let Err(error) = execute_in_background(&pool, &sql, &[&key]).await {
                    tracing::debug!(%error, "could not fold the task counts");
                    seen.store(true, Ordering::Relaxed);
                }
            }
        });
        Folder { changed, task }
    }

    /// Notes that tasks changed, so the counts have rows to fold.
    pub(super) fn changed(&self) {
        self.changed.store(true, Ordering::Relaxed);
    }
}
