//! Folding of the task counts. taskq's statements append their changes
//! per action and state to `taskq_tallies` (and triggers those of other
//! writers, row by row; see migrations 0002 and 0003); this task folds
//! them into one row per action and state every [`EVERY`] while the
//! backend writes, so that `len` and `stats` add up a few rows. It also
//! adopts the tasks that single enqueues insert uncounted (migration 0003)
//! into the tallies when more than [`UNCOUNTED_MAX`] of them wait, which
//! `len` and `stats` would otherwise count one by one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::task::JoinHandle;

use super::pool::execute_in_background;
use super::run::{self, Runner};
use crate::backend::migration::checksum;

/// How often the counts are folded while tasks change.
const EVERY: Duration = Duration::from_secs(1);

/// How many uncounted tasks may wait before they are adopted into the
/// counts: few enough that `len` and `stats` stay around a millisecond
/// counting them live (BENCHMARKS.md), and a queue drained as fast as it
/// fills never reaches it.
const UNCOUNTED_MAX: i64 = 10_000;

/// How many uncounted tasks one statement adopts.
const ADOPT_BATCH: i64 = 10_000;

#[derive(Debug)]
pub(super) struct TallyFolder {
    changed: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for TallyFolder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TallyFolder {
    /// Starts folding the counts of `schema` with the statements `fold`
    /// and `adopt`.
    pub(super) fn spawn(
        pool: Pool,
        runner: Arc<Runner>,
        fold: String,
        adopt: String,
        schema: &str,
    ) -> Self {
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
                // Counts are read correctly unfolded and unadopted too: a
                // failure only leaves more to add up, until the next tick.
                if let Err(error) = adopt_uncounted(&pool, &runner, &adopt).await {
                    tracing::debug!(%error, "could not adopt uncounted tasks");
                    seen.store(true, Ordering::Relaxed);
                }
                if let Err(error) = execute_in_background(&pool, &runner, &fold, &[&key]).await {
                    tracing::debug!(%error, "could not fold the task counts");
                    seen.store(true, Ordering::Relaxed);
                }
            }
        });
        TallyFolder { changed, task }
    }

    /// Notes that tasks changed, so the counts have rows to fold.
    pub(super) fn changed(&self) {
        self.changed.store(true, Ordering::Relaxed);
    }
}

/// Adopts uncounted tasks, a batch at a time, while more than
/// [`UNCOUNTED_MAX`] wait.
async fn adopt_uncounted(
    pool: &Pool,
    runner: &Runner,
    sql: &str,
) -> std::result::Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let statement = runner
        .ready(&client, sql)
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let rows = run::query(&client, &statement, &[&UNCOUNTED_MAX, &ADOPT_BATCH])
            .await
            .map_err(|e| e.to_string())?;
        let adopted: i64 = rows
            .first()
            .ok_or("no answer")?
            .try_get(0)
            .map_err(|e| e.to_string())?;
        if adopted < ADOPT_BATCH {
            return Ok(());
        }
    }
}
