//! Counters and timings of a worker, readable at any time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Live counters of a [`Worker`](super::Worker). Read them with
/// [`snapshot`](WorkerMetrics::snapshot).
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    completed: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    snoozed: AtomicU64,
    cancelled: AtomicU64,
    panicked: AtomicU64,
    lease_lost: AtomicU64,
    refused: AtomicU64,
    released: AtomicU64,
    claims: AtomicU64,
    handed_over: AtomicU64,
    claim_errors: AtomicU64,
    in_flight: AtomicU64,
    wait_micros: AtomicU64,
    run_micros: AtomicU64,
    max_wait_micros: AtomicU64,
    max_run_micros: AtomicU64,
    started: AtomicU64,
}

/// The counters of a worker at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Tasks completed.
    pub completed: u64,
    /// Tries that failed and will be retried.
    pub retried: u64,
    /// Tasks failed for good (tries used up, a permanent failure, or an
    /// undecodable payload).
    pub failed: u64,
    /// Tasks snoozed.
    pub snoozed: u64,
    /// Tasks that ended cancelled: by their handler's
    /// [`Outcome::Cancel`](super::Outcome::Cancel), or because their
    /// cancellation was asked for while they ran and they did not
    /// complete.
    pub cancelled: u64,
    /// Handler panics (each also counted as retried or failed).
    pub panicked: u64,
    /// Tries whose lease was lost while running; their results were
    /// discarded.
    pub lease_lost: u64,
    /// Results (a completion, failure, snooze or release) that reached
    /// the database after another claim took the task over, and were
    /// refused there: fencing at work. Each is also counted in
    /// `lease_lost`.
    pub refused: u64,
    /// Tasks given back unfinished at shutdown.
    pub released: u64,
    /// Claims answered by the database, each for one or more tasks of an
    /// action; those that found nothing ready included.
    pub claims: u64,
    /// Tasks an enqueue of this process handed to this worker while it
    /// waited idle, claimed in the enqueue's own statement (no claim of
    /// the worker's own; counted in `started` too).
    pub handed_over: u64,
    /// Failed attempts to claim (database unreachable, say).
    pub claim_errors: u64,
    /// Handlers running now.
    pub in_flight: u64,
    /// Tries started.
    pub started: u64,
    /// Total time tasks waited between becoming ready and starting.
    pub total_wait: Duration,
    /// The longest such wait.
    pub max_wait: Duration,
    /// Total time handlers ran.
    pub total_run: Duration,
    /// The longest handler run.
    pub max_run: Duration,
}

fn micros(duration: Duration) -> u64 {
    crate::micros::from_duration(duration).unsigned_abs()
}

impl WorkerMetrics {
    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        MetricsSnapshot {
            completed: get(&self.completed),
            retried: get(&self.retried),
            failed: get(&self.failed),
            snoozed: get(&self.snoozed),
            cancelled: get(&self.cancelled),
            panicked: get(&self.panicked),
            lease_lost: get(&self.lease_lost),
            refused: get(&self.refused),
            released: get(&self.released),
            claims: get(&self.claims),
            handed_over: get(&self.handed_over),
            claim_errors: get(&self.claim_errors),
            in_flight: get(&self.in_flight),
            started: get(&self.started),
            total_wait: Duration::from_micros(get(&self.wait_micros)),
            max_wait: Duration::from_micros(get(&self.max_wait_micros)),
            total_run: Duration::from_micros(get(&self.run_micros)),
            max_run: Duration::from_micros(get(&self.max_run_micros)),
        }
    }

    pub(crate) fn start(&self, waited: Duration) {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.wait_micros
            .fetch_add(micros(waited), Ordering::Relaxed);
        self.max_wait_micros
            .fetch_max(micros(waited), Ordering::Relaxed);
    }

    pub(crate) fn finish(&self, ran: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.run_micros.fetch_add(micros(ran), Ordering::Relaxed);
        self.max_run_micros
            .fetch_max(micros(ran), Ordering::Relaxed);
    }

    pub(crate) fn count(&self, event: Event) {
        let counter = match event {
            Event::Completed => &self.completed,
            Event::Retried => &self.retried,
            Event::Failed => &self.failed,
            Event::Snoozed => &self.snoozed,
            Event::Cancelled => &self.cancelled,
            Event::Panicked => &self.panicked,
            Event::LeaseLost => &self.lease_lost,
            Event::Refused => {
                self.lease_lost.fetch_add(1, Ordering::Relaxed);
                &self.refused
            }
            Event::Released => &self.released,
            Event::Claimed => &self.claims,
            Event::HandedOver => &self.handed_over,
            Event::ClaimError => &self.claim_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Something a worker counts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    Completed,
    Retried,
    Failed,
    Snoozed,
    Cancelled,
    Panicked,
    LeaseLost,
    /// A result refused by the database's fencing (also a lost lease).
    Refused,
    Released,
    /// A claim the database answered (with tasks or without).
    Claimed,
    /// A task handed over by an enqueue of this process.
    HandedOver,
    ClaimError,
}
