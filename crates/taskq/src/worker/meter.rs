//! What a worker counts per action: the throughput history it records in
//! the database, and the series it reports through the `metrics` crate's
//! facade (names in docs/metrics.md).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

use super::metrics::Event;
use crate::throughput::Throughput;

/// The meters of every action a worker runs.
#[derive(Debug, Default)]
pub(super) struct Meters {
    by_action: HashMap<String, ActionMeter>,
}

/// The meters of one action, looked up once per try with
/// [`Meters::of`].
#[derive(Debug)]
pub(super) struct ActionMeter {
    /// Counted since the history last recorded them.
    completed: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    facade: Facade,
}

/// The action's handles of the `metrics` facade, registered once, so that
/// counting a task is an atomic add in whatever recorder is installed
/// (nothing when none is).
#[derive(Debug)]
struct Facade {
    completed: Counter,
    retried: Counter,
    failed: Counter,
    cancelled: Counter,
    snoozed: Counter,
    lease_lost: Counter,
    panicked: Counter,
    released: Counter,
    run: Histogram,
    wait: Histogram,
    in_flight: Gauge,
}

impl Facade {
    fn new(action: &str) -> Self {
        let action = action.to_owned();
        let count = |name: &'static str| counter!(name, "action" => action.clone());
        Facade {
            completed: count("taskq_worker_completed_total"),
            retried: count("taskq_worker_retried_total"),
            failed: count("taskq_worker_failed_total"),
            cancelled: count("taskq_worker_cancelled_total"),
            snoozed: count("taskq_worker_snoozed_total"),
            lease_lost: count("taskq_worker_lease_lost_total"),
            panicked: count("taskq_worker_panicked_total"),
            released: count("taskq_worker_released_total"),
            run: histogram!("taskq_worker_run_seconds", "action" => action.clone()),
            wait: histogram!("taskq_worker_wait_seconds", "action" => action.clone()),
            in_flight: gauge!("taskq_worker_in_flight", "action" => action.clone()),
        }
    }
}

impl ActionMeter {
    /// A try started after waiting `waited` since it was ready.
    pub(super) fn start(&self, waited: Duration) {
        self.facade.wait.record(waited.as_secs_f64());
        self.facade.in_flight.increment(1.0);
    }

    /// Its handler ran for `ran`.
    pub(super) fn finish(&self, ran: Duration) {
        self.facade.run.record(ran.as_secs_f64());
        self.facade.in_flight.decrement(1.0);
    }

    /// Counts what became of a try.
    pub(super) fn count(&self, event: Event) {
        let facade = &self.facade;
        match event {
            Event::Completed => {
                self.completed.fetch_add(1, Ordering::Relaxed);
                facade.completed.increment(1);
            }
            Event::Retried => {
                self.retried.fetch_add(1, Ordering::Relaxed);
                facade.retried.increment(1);
            }
            Event::Failed => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                facade.failed.increment(1);
            }
            Event::Cancelled => facade.cancelled.increment(1),
            Event::Snoozed => facade.snoozed.increment(1),
            Event::LeaseLost | Event::Refused => facade.lease_lost.increment(1),
            Event::Panicked => facade.panicked.increment(1),
            Event::Released => facade.released.increment(1),
            Event::Claimed | Event::HandedOver | Event::ClaimError => {}
        }
    }
}

impl Meters {
    /// Meters for `actions`, registered with the facade's recorder now.
    pub(super) fn new<'a>(actions: impl IntoIterator<Item = &'a str>) -> Self {
        let by_action = actions
            .into_iter()
            .map(|action| {
                let meter = ActionMeter {
                    completed: AtomicU64::new(0),
                    retried: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                    facade: Facade::new(action),
                };
                (action.to_owned(), meter)
            })
            .collect();
        Meters { by_action }
    }

    /// The meters of `action`; `None` for an action the worker does not
    /// run.
    pub(super) fn of(&self, action: &str) -> Option<&ActionMeter> {
        self.by_action.get(action)
    }

    /// What was counted since the last call, as rows of the throughput
    /// history for the minute of `now`; the counts start again from zero.
    pub(super) fn take(&self, now: SystemTime) -> Vec<Throughput> {
        self.by_action
            .iter()
            .map(|(action, meter)| Throughput {
                minute: now,
                action: action.clone(),
                completed: meter.completed.swap(0, Ordering::Relaxed),
                retried: meter.retried.swap(0, Ordering::Relaxed),
                failed: meter.failed.swap(0, Ordering::Relaxed),
            })
            .filter(|row| !row.is_empty())
            .collect()
    }

    /// Puts back rows that [`take`](Meters::take) gave and that could not
    /// be recorded, to be recorded with the next ones.
    pub(super) fn give_back(&self, rows: Vec<Throughput>) {
        for row in rows {
            if let Some(meter) = self.by_action.get(&row.action) {
                meter.completed.fetch_add(row.completed, Ordering::Relaxed);
                meter.retried.fetch_add(row.retried, Ordering::Relaxed);
                meter.failed.fetch_add(row.failed, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_taken_once_and_can_be_given_back() {
        let meters = Meters::new(["a", "b"]);
        let (a, b) = (meters.of("a").unwrap(), meters.of("b").unwrap());
        a.count(Event::Completed);
        a.count(Event::Completed);
        a.count(Event::Failed);
        b.count(Event::Retried);
        b.count(Event::Snoozed);
        assert!(meters.of("unknown").is_none());
        let now = SystemTime::now();
        let mut rows = meters.take(now);
        rows.sort_by(|x, y| x.action.cmp(&y.action));
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].completed, rows[0].failed), (2, 1));
        assert_eq!(rows[1].retried, 1);
        assert!(meters.take(now).is_empty());
        meters.give_back(rows.clone());
        let mut again = meters.take(now);
        again.sort_by(|x, y| x.action.cmp(&y.action));
        assert_eq!(again, rows);
    }
}
