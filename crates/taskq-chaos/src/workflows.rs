//! The workflows scenario: the producer enqueues its tasks as diamonds of
//! four numbers (`4k`, then `4k+1` and `4k+2`, then `4k+3`, each waiting
//! for the ones before it), and the checker finds, in the workers'
//! ledgers, every run of a dependent that started before each of its
//! dependencies had finished a run: a task released early.

use std::collections::HashMap;
use std::path::Path;

use taskq::{Dependency, NewTask};

/// The numbers task `i` waits for.
pub(crate) fn dependencies_of(i: u64) -> Vec<u64> {
    match i % 4 {
        1 | 2 => vec![i - i % 4],
        3 => vec![i - 2, i - 1],
        _ => Vec::new(),
    }
}

/// Makes the batch numbered from `first` (a multiple of four) wait as
/// diamonds, each task for the earlier ones of its diamond.
pub(crate) fn as_diamonds(first: u64, tasks: &mut [NewTask]) {
    for (at, task) in tasks.iter_mut().enumerate() {
        let i = first + at as u64;
        task.options.depends_on = dependencies_of(i)
            .into_iter()
            .filter(|dep| *dep >= first)
            .map(|dep| Dependency::Earlier((dep - first) as usize))
            .collect();
    }
}

/// What the ledgers say of the diamonds.
#[derive(Debug, Default)]
pub(crate) struct Early {
    /// Runs of tasks that waited for others.
    pub(crate) dependent_runs: u64,
    /// Of those, runs that started before a dependency had finished a
    /// run: must be 0.
    pub(crate) ran_early: u64,
}

pub(crate) fn check(dir: &Path) -> Early {
    let mut task_of: HashMap<u64, u64> = HashMap::new();
    let mut starts: Vec<(u64, i64)> = Vec::new();
    let mut finished: HashMap<u64, i64> = HashMap::new();
    for line in crate::check::lines(dir, "ledger-") {
        let at = line["at"].as_i64();
        if let (Some(task), Some(i), Some(at)) = (line["task"].as_u64(), line["i"].as_u64(), at) {
            task_of.insert(i, task);
            starts.push((i, at));
        } else if let (Some(task), Some(at)) = (line["finished"].as_u64(), at) {
            let first = finished.entry(task).or_insert(at);
            *first = (*first).min(at);
        }
    }
    let mut early = Early::default();
    for (i, start) in starts {
        let dependencies = dependencies_of(i);
        if dependencies.is_empty() {
            continue;
        }
        early.dependent_runs += 1;
        let done = |dep: &u64| {
            task_of
                .get(dep)
                .and_then(|task| finished.get(task))
                .is_some_and(|end| *end < start)
        };
        if !dependencies.iter().all(done) {
            early.ran_early += 1;
        }
    }
    early
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diamonds_wait_for_the_earlier_tasks_of_their_own() {
        assert_eq!(dependencies_of(8), Vec::<u64>::new());
        assert_eq!(dependencies_of(9), vec![8]);
        assert_eq!(dependencies_of(11), vec![9, 10]);
        let mut tasks: Vec<NewTask> = (0..8).map(|i| NewTask::raw("x", vec![i])).collect();
        as_diamonds(4, &mut tasks);
        assert_eq!(tasks[3].options.depends_on, [1, 2].map(Dependency::Earlier));
        assert_eq!(tasks[5].options.depends_on, [Dependency::Earlier(4)]);
    }
}
