//! The limit of the schedules scenario: the harness's action may run at
//! most [`LIMIT`] tasks at once across the whole fleet, set before the
//! workers start. The checker replays the ledgers' starts and finishes of
//! each run and counts the moments more ran at once: a run the handler
//! finished lasts from its start to its finish and must never exceed the
//! limit; a run that never finished (its worker killed, or the handler
//! stopped) holds its slot until its lease ends, which the checker takes
//! as its start plus the lease, and the excesses it makes are counted
//! apart.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use taskq::{Limits, Queue};

use crate::roles::ACTION;

/// How many of the harness's tasks may run at once.
pub(crate) const LIMIT: usize = 5;

/// Limits the harness's action, before any worker runs.
pub(crate) async fn set(queue: &Queue) {
    queue
        .set_limits(ACTION, Limits::new().concurrency(LIMIT as u32))
        .await
        .expect("set the limit");
}

/// What the runs of a limited action were.
#[derive(Debug, Default)]
pub(crate) struct Overlaps {
    /// The most finished runs at once.
    pub(crate) most: u64,
    /// Starts at which more than [`LIMIT`] finished runs ran: must be 0.
    pub(crate) exceeded: u64,
    /// Starts at which more than [`LIMIT`] ran counting the runs that never
    /// finished until their lease's end: an excess a killed worker's slot
    /// makes while its lease is still valid (it is not running).
    pub(crate) exceeded_with_unfinished: u64,
}

/// The most at once of `runs` (start, end), and how many starts exceed
/// [`LIMIT`].
fn replay(runs: &[(i64, i64)]) -> (u64, u64) {
    let mut events: Vec<(i64, bool)> = runs
        .iter()
        .flat_map(|&(start, end)| [(start, true), (end, false)])
        .collect();
    // Ends before starts at the same time.
    events.sort_unstable();
    let (mut now, mut most, mut exceeded) = (0u64, 0u64, 0u64);
    for (_, starts) in events {
        if starts {
            now += 1;
            most = most.max(now);
            exceeded += u64::from(now > LIMIT as u64);
        } else {
            now = now.saturating_sub(1);
        }
    }
    (most, exceeded)
}

/// Replays the runs of the harness's action in the ledgers of `dir`.
pub(crate) fn check(dir: &Path, lease: Duration) -> Overlaps {
    // Per task, its starts and finishes, in the order they were written.
    let mut by_task: BTreeMap<i64, Vec<(i64, bool)>> = BTreeMap::new();
    for line in crate::check::lines(dir, "ledger-") {
        let at = line["at"].as_i64();
        if let (Some(task), Some(at)) = (line["task"].as_i64(), at) {
            if line.get("i").is_some() {
                by_task.entry(task).or_default().push((at, true));
            }
        } else if let (Some(task), Some(at)) = (line["finished"].as_i64(), at) {
            by_task.entry(task).or_default().push((at, false));
        }
    }
    let lease = lease.as_micros() as i64;
    let (mut finished, mut unfinished) = (Vec::new(), Vec::new());
    for mut events in by_task.into_values() {
        events.sort_unstable();
        let mut open: Option<i64> = None;
        for (at, starts) in events {
            match (starts, open) {
                (true, Some(start)) => unfinished.push((start, start + lease)),
                (false, Some(start)) => finished.push((start, at)),
                _ => {}
            }
            open = starts.then_some(at);
        }
        if let Some(start) = open {
            unfinished.push((start, start + lease));
        }
    }
    let (most, exceeded) = replay(&finished);
    finished.extend(unfinished);
    let (_, exceeded_with_unfinished) = replay(&finished);
    Overlaps {
        most,
        exceeded,
        exceeded_with_unfinished,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_past_the_limit_are_counted() {
        let at_once = |n: i64| (0..n).map(|i| (i, 100)).collect::<Vec<_>>();
        assert_eq!(replay(&at_once(LIMIT as i64)), (LIMIT as u64, 0));
        assert_eq!(replay(&at_once(LIMIT as i64 + 2)), (LIMIT as u64 + 2, 2));
        // Back to back is not at once.
        let chained: Vec<(i64, i64)> = (0..20).map(|i| (i * 10, i * 10 + 10)).collect();
        assert_eq!(replay(&chained), (1, 0));
    }
}
