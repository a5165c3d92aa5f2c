//! The worker's share of periodic tasks: it declares the schedules it was
//! given, then enqueues the ticks of every schedule in the database as
//! they come due (each exactly once across all workers, see
//! [`Schedules::tick`](crate::Schedules::tick)).

use std::sync::Arc;
use std::time::Duration;

use super::Shared;

/// The longest wait between two looks at the schedules, so that a
/// schedule declared by another process is seen soon.
const LOOK_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// After a look that failed (the database unreachable), the wait before
/// the next.
const AFTER_ERROR: Duration = Duration::from_secs(1);

/// Enqueues due ticks until the worker stops claiming.
pub(super) async fn run(shared: Arc<Shared>) {
    let every = LOOK_AT_LEAST_EVERY.min(shared.queue.config().poll_interval);
    loop {
        let wait = match shared.queue.schedules().tick().await {
            Ok(ticked) => {
                if ticked.enqueued > 0 {
                    tracing::debug!(tasks = ticked.enqueued, "enqueued the tasks of due ticks");
                }
                // A little after the tick, so that it is due by then.
                ticked
                    .next_in
                    .map_or(every, |next| (next + Duration::from_millis(1)).min(every))
            }
            Err(error) => {
                tracing::warn!(%error, "could not enqueue the due ticks of schedules; trying again");
                AFTER_ERROR
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.stop_claiming.cancelled() => return,
        }
    }
}
