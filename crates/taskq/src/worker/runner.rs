//! One task's run: the handler on its own tokio task, the lease heartbeat
//! beside it, and the outcome applied to the lease.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::task::{JoinError, JoinHandle};
use tracing::Instrument;

use super::handler::{ErasedHandler, HandlerResult, Outcome, Stop, StopReason, TaskContext};
use super::meter::ActionMeter;
use super::metrics::Event;
use super::{Shared, Slot};
use crate::error::Error;
use crate::lease::{Completion, FailOutcome, Lease};

/// How a handler's run ended.
enum End {
    /// It returned, or panicked.
    Finished(Result<HandlerResult, JoinError>),
    /// A heartbeat found the lease taken over.
    LeaseLost,
    /// The shutdown grace period ran out.
    Stopped,
}

/// How often to extend a lease of `timeout`: three times per lease.
fn heartbeat_interval(timeout: Duration) -> Duration {
    (timeout / 3).max(Duration::from_millis(10))
}

fn panic_message(error: JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-text panic".to_string()),
        Err(error) => error.to_string(),
    }
}

/// Waits for the handler's run, extending the lease every third of its
/// timeout; tells the handler to stop (`stop`) when its cancellation is
/// asked for (it may still finish as it likes), and stops it when the
/// lease is lost or the shutdown grace period ends.
async fn watch(
    shared: &Shared,
    lease: &Lease,
    mut handle: JoinHandle<HandlerResult>,
    stop: &Stop,
) -> End {
    let timeout = lease.task().timeout;
    let beat = heartbeat_interval(timeout);
    let mut next_beat = tokio::time::Instant::now() + beat;
    let cancel_watch = shared.queue.wakeups().watch_cancel(lease.id());
    loop {
        tokio::select! {
            result = &mut handle => return End::Finished(result),
            () = cancel_watch.requested(), if stop.reason().is_none() => {
                tracing::info!("the task's cancellation was asked for; telling its handler");
                stop.stop(StopReason::Cancelled);
            }
            _ = tokio::time::sleep_until(next_beat) => {
                next_beat += beat;
                match lease.heartbeat(timeout).await {
                    Ok(extended) => {
                        if extended.cancel_requested && stop.reason().is_none() {
                            tracing::info!("the task's cancellation was asked for; telling its handler");
                            stop.stop(StopReason::Cancelled);
                        }
                    }
                    Err(Error::LeaseLost { .. }) => {
                        stop.stop(StopReason::LeaseLost);
                        let grace = shared.config.cancel_grace;
                        if tokio::time::timeout(grace, &mut handle).await.is_err() {
                            handle.abort();
                        }
                        return End::LeaseLost;
                    }
                    Err(error) => tracing::warn!(%error, "could not extend the lease; trying again"),
                }
            }
            _ = shared.hard_stop.cancelled() => {
                stop.stop(StopReason::Shutdown);
                handle.abort();
                return End::Stopped;
            }
        }
    }
}

/// Runs one try of the task `lease` holds and records its end; returns
/// what was recorded (`None`: nothing could be, so the task runs again
/// when its lease expires).
pub(super) async fn run(
    shared: Arc<Shared>,
    handler: Arc<dyn ErasedHandler>,
    lease: Lease,
    slot: Slot,
) -> Option<Event> {
    let task = lease.shared_task();
    let span =
        tracing::info_span!("taskq.task", id = %task.id, action = %task.action, try = task.tries);
    async move {
        let ready_at = task.not_before.max(task.created_at);
        let waited = SystemTime::now()
            .duration_since(ready_at)
            .unwrap_or_default();
        // The action's meters, looked up once for the whole try.
        let meter = shared.meters.of(&task.action);
        shared.started(meter, waited);
        let started = Instant::now();
        let stop = Stop::new(shared.hard_stop.child_token());
        let context = TaskContext::new(Arc::clone(&task), stop.clone(), shared.queue.clone());
        if task.cancel_requested.is_some() {
            // Queued again by an older taskq after its cancellation was
            // asked for: it ends cancelled without running.
            let ended = lease
                .cancel("cancelled: its cancellation was asked for while an earlier try ran")
                .await;
            shared.finished(meter, started.elapsed());
            return record(&shared, meter, Event::Cancelled, ended);
        }

        // A prefetched lease may have waited: make sure it has most of its
        // time left before starting, and skip it if it was taken over.
        let left = lease
            .expires()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        if left < task.timeout / 2 {
            match lease.heartbeat(task.timeout).await {
                Err(Error::LeaseLost { .. }) => {
                    tracing::warn!("a prefetched task was taken over before it started");
                    shared.finished(meter, started.elapsed());
                    shared.count(meter, Event::LeaseLost);
                    return Some(Event::LeaseLost);
                }
                Err(error) => tracing::warn!(%error, "could not extend a prefetched task's lease"),
                Ok(_) => {}
            }
        }
        let end = match handler.call(lease.payload(), context) {
            Err(reason) => End::Finished(Ok(Ok(Outcome::fail(reason)))),
            Ok(future) => {
                let handle = tokio::spawn(future.in_current_span());
                watch(&shared, &lease, handle, &stop).await
            }
        };
        // A handler that gave up because the shutdown grace period ran out
        // (it saw its cancellation) is released, not failed: its try does
        // not count. A completion that made it in time still counts.
        let end = match end {
            End::Finished(result)
                if shared.hard_stop.is_cancelled()
                    && !matches!(result, Ok(Ok(Outcome::Complete { .. }))) =>
            {
                End::Stopped
            }
            other => other,
        };
        shared.finished(meter, started.elapsed());
        crate::failpoint::hit("after-effect");
        // The next task may start while this result is being recorded
        // (a completion lost in a crash only means the task runs again),
        // but only so many results may be waiting at once.
        let recording = Arc::clone(&shared.recording).acquire_owned().await;
        drop(slot);
        let cancel_asked = stop.reason() == Some(StopReason::Cancelled);
        let recorded = finish(&shared, meter, lease, end, cancel_asked).await;
        drop(recording);
        recorded
    }
    .instrument(span)
    .await
}

/// Applies the end of a run to the lease and counts it; returns what was
/// counted. When the task's cancellation was asked for (`cancel_asked`),
/// anything but a completion ends it cancelled (the database sees to
/// that).
async fn finish(
    shared: &Shared,
    meter: Option<&ActionMeter>,
    lease: Lease,
    end: End,
    cancel_asked: bool,
) -> Option<Event> {
    let or_cancelled = |event: Event| {
        if cancel_asked {
            Event::Cancelled
        } else {
            event
        }
    };
    let (event, applied) = match end {
        End::LeaseLost => {
            tracing::warn!("the lease was lost while the handler ran; its result is discarded");
            shared.count(meter, Event::LeaseLost);
            return Some(Event::LeaseLost);
        }
        End::Stopped => (or_cancelled(Event::Released), lease.release().await),
        End::Finished(Ok(Ok(Outcome::Complete { follow_ups, result }))) => {
            complete(lease, follow_ups, result).await
        }
        End::Finished(Ok(Ok(Outcome::Snooze { delay }))) => {
            (or_cancelled(Event::Snoozed), lease.snooze(delay).await)
        }
        End::Finished(Ok(Ok(Outcome::Fail { reason }))) => {
            tracing::warn!(reason, "task failed for good");
            (
                or_cancelled(Event::Failed),
                lease.fail_permanently(reason).await,
            )
        }
        End::Finished(Ok(Ok(Outcome::Cancel { reason }))) => {
            tracing::info!(reason, "task cancelled by its handler");
            (Event::Cancelled, lease.cancel(reason).await)
        }
        End::Finished(Ok(Ok(Outcome::Retry { reason })) | Ok(Err(reason))) => {
            fail(lease, reason).await
        }
        End::Finished(Err(error)) => {
            shared.count(meter, Event::Panicked);
            let reason = format!("the handler panicked: {}", panic_message(error));
            fail(lease, reason).await
        }
    };
    record(shared, meter, event, applied)
}

/// Counts what applying a run's end did, and returns it.
fn record(
    shared: &Shared,
    meter: Option<&ActionMeter>,
    event: Event,
    applied: crate::Result<()>,
) -> Option<Event> {
    let counted = match applied {
        Ok(()) => event,
        Err(Error::LeaseLost { .. }) => {
            tracing::warn!("the lease was lost before the result could be recorded");
            Event::Refused
        }
        Err(error) => {
            tracing::warn!(%error, "could not record the result; the task runs again after its lease expires");
            return None;
        }
    };
    shared.count(meter, counted);
    Some(counted)
}

/// Completes the task; when the handler's follow-ups are invalid, the try
/// fails with the reason instead (see [`Lease::complete_with`]).
async fn complete(
    lease: Lease,
    follow_ups: Vec<crate::NewTask>,
    result: Option<crate::TaskResult>,
) -> (Event, crate::Result<()>) {
    match lease.complete_checked(follow_ups, result).await {
        Ok(Completion::Completed(_)) => (Event::Completed, Ok(())),
        Ok(Completion::Refused { error, outcome }) => {
            log_failure(
                &format!("the handler's follow-up tasks were refused: {error}"),
                outcome,
            );
            (failure_event(outcome), Ok(()))
        }
        Err(error) => (Event::Completed, Err(error)),
    }
}

async fn fail(lease: Lease, reason: String) -> (Event, crate::Result<()>) {
    match lease.fail(&reason).await {
        Ok(outcome) => {
            log_failure(&reason, outcome);
            (failure_event(outcome), Ok(()))
        }
        Err(error) => {
            tracing::warn!(reason, "try failed");
            (Event::Retried, Err(error))
        }
    }
}

fn failure_event(outcome: FailOutcome) -> Event {
    match outcome {
        FailOutcome::Retrying { .. } => Event::Retried,
        FailOutcome::Failed => Event::Failed,
        FailOutcome::Cancelled => Event::Cancelled,
    }
}

fn log_failure(reason: &str, outcome: FailOutcome) {
    match outcome {
        FailOutcome::Retrying { after } => {
            tracing::warn!(reason, retry_in = ?after, "try failed; the task runs again after the backoff")
        }
        FailOutcome::Failed => tracing::warn!(reason, "try failed; the task failed for good"),
        FailOutcome::Cancelled => {
            tracing::info!(
                reason,
                "try failed after its cancellation was asked for; the task is cancelled"
            )
        }
    }
}
