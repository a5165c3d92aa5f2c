//! The schedule of the schedules scenario: one tick a second, declared
//! before the workers start. Every worker process enqueues due ticks and
//! runs their tasks, writing each run to its ledger; the checker then
//! tells whether a tick was enqueued twice (two tasks for one tick time)
//! or missed (a gap of more than a second between ticks) while workers
//! were killed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use taskq::{Queue, Schedule};

/// The action of the ticks' tasks.
pub const BEAT: &str = "chaos-beat";

/// The time between ticks.
const EVERY: Duration = Duration::from_secs(1);

/// Declares the schedule (as each worker process also does).
pub(crate) fn schedule() -> Schedule {
    Schedule::every(BEAT, BEAT, EVERY)
}

/// Declares the schedule on `queue`, before any worker runs.
pub(crate) async fn declare(queue: &Queue) {
    queue
        .schedules()
        .upsert(schedule())
        .await
        .expect("declare the schedule");
}

/// A ledger line for a run of a tick's task.
pub(crate) fn ran(task: taskq::TaskId, tick: std::time::SystemTime) -> Value {
    let tick = tick
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    json!({"beat": task.0, "tick": tick})
}

/// What the ticks of a run were.
#[derive(Debug, Default)]
pub(crate) struct Ticks {
    /// Tick times with a task, run or still in the database.
    pub(crate) ticks: u64,
    /// Tick times with more than one task.
    pub(crate) enqueued_twice: u64,
    /// Ticks between the first and the last that have no task.
    pub(crate) missed: u64,
}

/// Reads the runs of ticks from the ledger lines `ledgers` and the tick
/// tasks still in the database (`tasks`).
pub(crate) fn check(ledgers: &[Value], tasks: &[taskq::Task]) -> Ticks {
    let mut by_tick: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for line in ledgers {
        if let (Some(task), Some(tick)) = (line["beat"].as_i64(), line["tick"].as_i64()) {
            by_tick.entry(tick).or_default().insert(task);
        }
    }
    for task in tasks.iter().filter(|task| task.action == BEAT) {
        let tick = task
            .not_before
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        by_tick.entry(tick).or_default().insert(task.id.0);
    }
    let every = EVERY.as_micros() as i64;
    let times: Vec<i64> = by_tick.keys().copied().collect();
    Ticks {
        ticks: by_tick.len() as u64,
        enqueued_twice: by_tick.values().filter(|ids| ids.len() > 1).count() as u64,
        missed: times
            .windows(2)
            .map(|w| ((w[1] - w[0]) / every - 1).max(0) as u64)
            .sum(),
    }
}

/// The ledger lines in `dir` that record runs of ticks.
pub(crate) fn lines(dir: &Path) -> Vec<Value> {
    crate::check::lines(dir, "ledger-")
        .into_iter()
        .filter(|line| line.get("beat").is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_with_two_tasks_and_a_gap_are_counted() {
        let lines = [
            json!({"beat": 1, "tick": 1_000_000}),
            json!({"beat": 1, "tick": 1_000_000}),
            json!({"beat": 2, "tick": 2_000_000}),
            json!({"beat": 3, "tick": 2_000_000}),
            json!({"beat": 4, "tick": 5_000_000}),
            json!({"task": 9, "i": 1}),
        ];
        let ticks = check(&lines, &[]);
        assert_eq!((ticks.ticks, ticks.enqueued_twice, ticks.missed), (3, 1, 2));
    }
}
