//! How long finished tasks stay, and the worker's loop that removes them
//! when their time is up: in small batches, each worker at its own
//! moments, so that claims never wait long behind a purge and two workers
//! do not repeat each other's work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use crate::error::{Error, Result};
use crate::options::validate_duration;
use crate::state::State;

const DAY: Duration = Duration::from_secs(86_400);

/// Tasks one batch deletes: a few milliseconds of a write.
const BATCH: u32 = 500;

/// The most time one round spends purging, then it waits for the next.
const ROUND_BUDGET: Duration = Duration::from_secs(2);

/// The pause between two batches of a round, for the other writers.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// How long finished tasks stay before running workers remove them, per
/// final state; `None` keeps them until purged by hand (`Queue::purge`,
/// `taskq purge`). Tasks are removed in batches of a few hundred, each
/// worker at a random moment of each [`every`](Self::every).
///
/// A task that holds a unique key after it finished (a key that counts
/// finished states, or one with a period) stops holding it when it is
/// removed: keep such tasks longer than the longest period you use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Succeeded tasks, which are kept only with
    /// [`QueueConfig::retain_completed`](crate::QueueConfig::retain_completed),
    /// a [result](crate::TaskResult), or a unique key that counts them.
    /// Default: 7 days.
    pub succeeded: Option<Duration>,
    /// Tasks that failed for good. Default: 30 days.
    pub failed: Option<Duration>,
    /// Cancelled tasks. Default: 30 days.
    pub cancelled: Option<Duration>,
    /// How often each worker looks for tasks to remove (at a random
    /// moment of each such period). Default: 1 minute.
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            succeeded: Some(7 * DAY),
            failed: Some(30 * DAY),
            cancelled: Some(30 * DAY),
            every: Duration::from_secs(60),
        }
    }
}

impl Retention {
    /// Keeps every finished task until it is purged by hand.
    pub const KEEP_ALL: Retention = Retention {
        succeeded: None,
        failed: None,
        cancelled: None,
        every: Duration::from_secs(60),
    };

    /// The states with a retention, and theirs.
    fn per_state(&self) -> impl Iterator<Item = (State, Duration)> {
        [
            (State::Succeeded, self.succeeded),
            (State::Failed, self.failed),
            (State::Cancelled, self.cancelled),
        ]
        .into_iter()
        .filter_map(|(state, keep)| keep.map(|keep| (state, keep)))
    }

    /// Checks each duration.
    pub(super) fn validate(&self) -> Result<()> {
        for (state, keep) in self.per_state() {
            validate_duration("retention", keep, true).map_err(|_| {
                Error::invalid(
                    "retention",
                    format!("the retention of {state} tasks is too long"),
                )
            })?;
        }
        if self.every < Duration::from_millis(10) {
            return Err(Error::invalid("retention", "every is shorter than 10 ms"));
        }
        validate_duration("retention", self.every, false)
    }
}

/// Removes finished tasks whose retention is over, round after round,
/// until the worker stops claiming.
pub(super) async fn run(shared: Arc<Shared>) {
    let retention = shared.config.retention;
    if retention.per_state().next().is_none() {
        return;
    }
    // A random moment of each period: workers started together spread out.
    let mut wait = retention.every.mul_f64(fastrand::f64());
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.stop_claiming.cancelled() => return,
        }
        match round(&shared, &retention).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "removed finished tasks past their retention"),
            Err(error) => {
                tracing::warn!(%error, "could not remove finished tasks past their retention; trying again later")
            }
        }
        // Half a period to a period and a half: never in step with others.
        wait = retention.every.mul_f64(0.5 + fastrand::f64());
    }
}

/// One round: batches per state until a batch comes back short, the
/// budget is spent, or the worker stops. Returns how many were removed.
async fn round(shared: &Shared, retention: &Retention) -> Result<u64> {
    let started = Instant::now();
    let mut removed = 0;
    for (state, keep) in retention.per_state() {
        loop {
            let n = shared.queue.purge_batch(state, keep, BATCH).await?;
            removed += n;
            let over = started.elapsed() >= ROUND_BUDGET || shared.stop_claiming.is_cancelled();
            if n < u64::from(BATCH) || over {
                break;
            }
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
        if started.elapsed() >= ROUND_BUDGET {
            break;
        }
    }
    Ok(removed)
}
