//! The checker: what the histories, the ledgers and the database say
//! together after a run.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;
use taskq::{ListOptions, Queue, State};

use crate::roles::{Payload, ACTION, FOLLOW_UP};

/// The figures of one run. The ones named "must be 0" fail the run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub backend: String,
    pub enqueues_attempted: u64,
    pub enqueues_acknowledged: u64,
    pub enqueues_failed: u64,
    pub enqueues_indeterminate: u64,
    /// Failed enqueues whose error was a typed busy error.
    pub enqueues_busy: u64,
    /// Acknowledged, never executed, and not in the database: must be 0.
    pub lost: u64,
    /// Executed but never enqueued: must be 0.
    pub unexpected: u64,
    /// Queued or running when the recovery window ended (poison tasks that
    /// retry forever excepted, they back off): must be 0. Measured by the
    /// supervisor while the workers still run.
    pub stuck: u64,
    /// Queued or running after the workers were stopped (tasks they gave
    /// back on shutdown, or whose lease a stop cut short): informational.
    pub left_after_stop: u64,
    /// Batches partly in the database: must be 0.
    pub partial_batches: u64,
    pub executions: u64,
    pub duplicated_tasks: u64,
    /// Tasks that started again after a run of theirs had finished its
    /// handler's work: completions lost on their way (a worker killed
    /// between its handler and its completion, or a completion not tried
    /// again). Must be 0 where `reruns_forbidden`.
    pub reran_after_finishing: u64,
    /// Whether the scenario's faults leave every finished run's
    /// completion to land (killed connections, not killed workers).
    pub reruns_forbidden: bool,
    pub most_runs_of_one_task: u64,
    /// Results that reached the database after another claim took their
    /// task over: those refused plus those accepted.
    pub stale_completions_attempted: u64,
    /// Results the database refused (lease lost), as the workers counted
    /// them; a worker killed right after one may not have written it down,
    /// so this is a lower bound.
    pub stale_completions_refused: u64,
    /// Parents with more than one follow-up: a stale completion accepted.
    /// Must be 0.
    pub stale_completions_accepted: u64,
    /// Tasks an enqueue handed to an idle worker of its own process,
    /// claimed, as the workers counted them (a lower bound, like
    /// `stale_completions_refused`).
    pub handed_over: u64,
    pub failed_for_good: u64,
    /// Tasks that ended cancelled.
    pub cancelled: u64,
    /// Cancels the controller made of queued tasks (they ended cancelled
    /// at once), and of running ones (asked to stop).
    pub cancels_of_queued: u64,
    pub cancels_of_running: u64,
    /// Executions that started after their task was cancelled while
    /// queued: must be 0.
    pub ran_after_cancel: u64,
    /// Pauses the controller made, and executions that started while the
    /// action was paused (past a grace for claims made just before): must
    /// be 0.
    pub pauses: u64,
    pub started_while_paused: u64,
    pub poison_forever_most_tries: i64,
    /// Ticks of the schedule (schedules scenario) that have a task, run
    /// or still in the database.
    pub ticks: u64,
    /// Ticks with more than one task: must be 0.
    pub ticks_enqueued_twice: u64,
    /// Ticks between the first and the last without a task: must be 0.
    pub ticks_missed: u64,
    /// The most tasks of a limited action that ran at once (0: no limit).
    pub limit_most_running: u64,
    /// Starts of a limited action's task past its limit: must be 0.
    pub limit_exceeded: u64,
    /// Starts past the limit counting the runs of killed workers until
    /// their lease ended (their slot is held, they do not run): counted.
    pub limit_exceeded_while_a_dead_lease_held: u64,
    pub out_of_order: u64,
    /// Runs of tasks that waited for others (the workflows scenario).
    pub dependent_runs: u64,
    /// Of those, runs that started before each task they waited for had
    /// finished a run: must be 0.
    pub ran_before_dependencies: u64,
    /// The longest time from the end of a fault to the next execution
    /// (faults after which nothing was left to run excepted).
    pub resumed_seconds: f64,
    /// Executions per second in the 3 s before the first fault.
    pub throughput_before: f64,
    /// The lowest rate of executions in the 3 s after a fault ended.
    pub throughput_after_min: f64,
    /// From the end of the last fault until no work was left, backlog
    /// included.
    pub drained_seconds: f64,
    pub integrity: String,
}

impl Report {
    /// The report as one line for people.
    pub fn summary(&self) -> String {
        let r = self;
        format!(
            "{} {}: enqueued {}/{} acknowledged ({} failed, {} of them busy, {} in doubt); lost {}; \
             unexpected {}; stuck {}; partial batches {}; executions {} ({} tasks ran more than once, \
             at most {} times, {} after a run had finished); stale completions attempted {}, refused {}, accepted {}; handed over {}; failed for good {}; \
             poison-forever tries {}; out of order {}; resumed within {:.2} s of a fault; \
             executions/s {:.0} before faults, {:.0} at least after one; drained {:.1} s after the last; \
             left after stop {}; cancels of queued {}, of running {}, ran after cancel {}, cancelled {}; \
             pauses {}, started while paused {}; ticks {}, enqueued twice {}, missed {}; \
             limit: at most {} at once, exceeded {} ({} counting dead leases); \
             runs of dependents {}, before their dependencies {}; integrity {}",
            r.backend,
            r.scenario,
            r.enqueues_acknowledged,
            r.enqueues_attempted,
            r.enqueues_failed,
            r.enqueues_busy,
            r.enqueues_indeterminate,
            r.lost,
            r.unexpected,
            r.stuck,
            r.partial_batches,
            r.executions,
            r.duplicated_tasks,
            r.most_runs_of_one_task,
            r.reran_after_finishing,
            r.stale_completions_attempted,
            r.stale_completions_refused,
            r.stale_completions_accepted,
            r.handed_over,
            r.failed_for_good,
            r.poison_forever_most_tries,
            r.out_of_order,
            r.resumed_seconds,
            r.throughput_before,
            r.throughput_after_min,
            r.drained_seconds,
            r.left_after_stop,
            r.cancels_of_queued,
            r.cancels_of_running,
            r.ran_after_cancel,
            r.cancelled,
            r.pauses,
            r.started_while_paused,
            r.ticks,
            r.ticks_enqueued_twice,
            r.ticks_missed,
            r.limit_most_running,
            r.limit_exceeded,
            r.limit_exceeded_while_a_dead_lease_held,
            r.dependent_runs,
            r.ran_before_dependencies,
            r.integrity,
        )
    }

    /// The figures that must be zero, with their names.
    pub fn violations(&self) -> Vec<(&'static str, u64)> {
        [
            ("lost", self.lost),
            ("unexpected", self.unexpected),
            ("stuck", self.stuck),
            ("partial batches", self.partial_batches),
            (
                "stale completions accepted",
                self.stale_completions_accepted,
            ),
            ("out of order", self.out_of_order),
            ("ran after cancel", self.ran_after_cancel),
            ("started while paused", self.started_while_paused),
            ("ticks enqueued twice", self.ticks_enqueued_twice),
            ("ticks missed", self.ticks_missed),
            ("limit exceeded", self.limit_exceeded),
            ("ran before its dependencies", self.ran_before_dependencies),
            (
                "ran again after finishing",
                if self.reruns_forbidden {
                    self.reran_after_finishing
                } else {
                    0
                },
            ),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

pub(crate) fn lines(dir: &Path, prefix: &str) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read the run directory")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // A process killed mid-write may leave a torn last line.
        all.extend(
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok()),
        );
    }
    all
}

async fn all_tasks(queue: &Queue) -> Vec<taskq::Task> {
    let mut tasks = Vec::new();
    let mut after = None;
    loop {
        let page = queue
            .list(&ListOptions {
                after,
                limit: 10_000,
                ..ListOptions::default()
            })
            .await
            .expect("list the tasks");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        tasks.extend(page);
    }
    tasks
}

/// Executions per second in `[from, to)` (Unix microseconds).
fn rate(times: &[i64], from: i64, to: i64) -> f64 {
    let n = times.iter().filter(|at| (from..to).contains(*at)).count();
    n as f64 / ((to - from) as f64 / 1e6)
}

/// How quickly work went on after the faults: the longest wait from a
/// fault's end to the next execution, the rate before the first fault and
/// the lowest rate after one (over up to 3 s, cut short by the next
/// fault; windows under half a second are left out). `times` are sorted
/// execution times.
fn recovery(report: &mut Report, times: &[i64], faults: &[(i64, i64)]) {
    const WINDOW: i64 = 3_000_000;
    let Some(first) = faults.first() else { return };
    report.throughput_before = rate(times, first.0 - WINDOW, first.0);
    let mut lowest: Option<f64> = None;
    for (index, (_, end)) in faults.iter().enumerate() {
        let next = times.partition_point(|at| at < end);
        if let Some(at) = times.get(next) {
            report.resumed_seconds = report.resumed_seconds.max((at - end) as f64 / 1e6);
        }
        let until = faults
            .get(index + 1)
            .map_or(end + WINDOW, |(start, _)| (*start).min(end + WINDOW));
        if until - end >= WINDOW / 6 {
            let after = rate(times, *end, until);
            lowest = Some(lowest.map_or(after, |low| low.min(after)));
        }
    }
    report.throughput_after_min = lowest.unwrap_or(0.0);
}

/// Executions per second from the first one, and the faults' starts and
/// ends in milliseconds on the same scale, to stderr.
fn print_timeline(times: &[i64], faults: &[(i64, i64)]) {
    let Some(first) = times.first() else { return };
    let mut per_second = std::collections::BTreeMap::<i64, u64>::new();
    for at in times {
        *per_second.entry((at - first) / 1_000_000).or_default() += 1;
    }
    eprintln!("executions per second: {per_second:?}");
    let faults: Vec<(i64, i64)> = faults
        .iter()
        .map(|(start, end)| ((start - first) / 1000, (end - first) / 1000))
        .collect();
    eprintln!("faults (start ms, end ms): {faults:?}");
}

/// What the producers' journals say: the numbers each batch intended and
/// which batches were acknowledged.
struct Journals {
    intended: HashSet<u64>,
    acked: HashSet<u64>,
    batches: Vec<(u64, u64)>,
}

fn read_journals(dir: &Path, report: &mut Report) -> Journals {
    let mut journals = Journals {
        intended: HashSet::new(),
        acked: HashSet::new(),
        batches: Vec::new(),
    };
    let mut outcome: HashMap<(u64, u64), bool> = HashMap::new();
    for line in lines(dir, "producer-") {
        let range = |key: &str| {
            let pair = line.get(key)?.as_array()?.clone();
            Some((pair[0].as_u64()?, pair[1].as_u64()?))
        };
        if let Some((first, n)) = range("intent") {
            report.enqueues_attempted += n;
            journals.intended.extend(first..first + n);
            journals.batches.push((first, n));
        } else if let Some((first, n)) = range("ack") {
            report.enqueues_acknowledged += n;
            journals.acked.extend(first..first + n);
            outcome.insert((first, n), true);
        } else if let Some((first, n)) = range("error") {
            report.enqueues_failed += n;
            if line["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("database busy"))
            {
                report.enqueues_busy += n;
            }
            outcome.insert((first, n), false);
        }
    }
    report.enqueues_indeterminate = journals
        .batches
        .iter()
        .filter(|batch| !outcome.contains_key(batch))
        .map(|(_, n)| n)
        .sum();
    journals
}

/// What the workers' ledgers say: each execution, and each worker
/// process's last counters.
#[derive(Default)]
struct Ledgers {
    runs: HashMap<u64, u64>,
    executed: HashSet<u64>,
    /// Follow-up tasks per parent, by id: a follow-up that ran twice is
    /// one task; two follow-up tasks mean two accepted completions.
    follow_ups: HashMap<u64, HashSet<u64>>,
    order: Vec<u64>,
    times: Vec<i64>,
    /// Each worker process's latest counters: refused, handed over.
    counters: HashMap<u64, (u64, u64)>,
    /// When each task's executions started, by id.
    starts: HashMap<u64, Vec<i64>>,
    /// When each task's runs finished their handler's work, by id.
    finished: HashMap<u64, Vec<i64>>,
}

impl Ledgers {
    /// Tasks with a run that started after one of theirs had finished.
    fn reran_after_finishing(&self) -> u64 {
        self.finished
            .iter()
            .filter(|(task, ends)| {
                let first_end = ends.iter().min().copied().unwrap_or(i64::MAX);
                self.starts
                    .get(task)
                    .is_some_and(|starts| starts.iter().any(|start| *start > first_end))
            })
            .count() as u64
    }
}

fn read_ledgers(dir: &Path, report: &mut Report, intended: &HashSet<u64>) -> Ledgers {
    let mut ledgers = Ledgers::default();
    for line in lines(dir, "ledger-") {
        if let (Some(refused), Some(pid)) =
            (line["metrics"]["refused"].as_u64(), line["pid"].as_u64())
        {
            let handed = line["metrics"]["handed_over"].as_u64().unwrap_or(0);
            ledgers.counters.insert(pid, (refused, handed));
        } else if let (Some(task), Some(i)) = (line["task"].as_u64(), line["i"].as_u64()) {
            ledgers.times.extend(line["at"].as_i64());
            if let Some(at) = line["at"].as_i64() {
                ledgers.starts.entry(task).or_default().push(at);
            }
            report.executions += 1;
            *ledgers.runs.entry(task).or_default() += 1;
            ledgers.executed.insert(i);
            ledgers.order.push(i);
            if !intended.contains(&i) {
                report.unexpected += 1;
            }
        } else if let (Some(parent), Some(task)) =
            (line["follow_up"].as_u64(), line["task"].as_u64())
        {
            ledgers.follow_ups.entry(parent).or_default().insert(task);
        } else if let (Some(task), Some(at)) = (line["finished"].as_u64(), line["at"].as_i64()) {
            ledgers.finished.entry(task).or_default().push(at);
        }
    }
    report.reran_after_finishing = ledgers.reran_after_finishing();
    ledgers.times.sort_unstable();
    ledgers
}

/// What the database still holds after the run: the numbers of the tasks
/// there, and their follow-ups (added to `follow_ups`).
async fn read_tasks(
    queue: &Queue,
    report: &mut Report,
    follow_ups: &mut HashMap<u64, HashSet<u64>>,
) -> HashSet<u64> {
    let mut present: HashSet<u64> = HashSet::new();
    for task in &all_tasks(queue).await {
        if task.action == FOLLOW_UP {
            if let Ok(parent) = task.payload_json::<u64>() {
                follow_ups
                    .entry(parent)
                    .or_default()
                    .insert(task.id.0 as u64);
            }
            if !task.state.is_finished() {
                report.left_after_stop += 1;
            }
            continue;
        }
        if task.action != ACTION {
            continue;
        }
        let Ok(payload) = task.payload_json::<Payload>() else {
            continue;
        };
        present.insert(payload.i);
        match task.state {
            State::Failed => report.failed_for_good += 1,
            State::Queued | State::Running
                if payload.poison && task.max_tries == taskq::FOREVER =>
            {
                report.poison_forever_most_tries =
                    report.poison_forever_most_tries.max(task.tries.into());
            }
            State::Waiting | State::Queued | State::Running => report.left_after_stop += 1,
            State::Cancelled => report.cancelled += 1,
            State::Succeeded => {}
        }
    }
    present
}

/// What the controller's journal says (see `control.rs`): executions
/// after a cancel of a queued task, and executions started while paused.
fn check_control(dir: &Path, report: &mut Report, ledgers: &Ledgers) {
    let grace = crate::control::PAUSE_GRACE.as_micros() as i64;
    for line in lines(dir, "control-") {
        if let (Some(task), Some(at)) = (line["cancel"].as_u64(), line["at"].as_i64()) {
            match line["outcome"].as_str() {
                Some("cancelled") => {
                    report.cancels_of_queued += 1;
                    let starts = ledgers.starts.get(&task).map_or(&[][..], Vec::as_slice);
                    report.ran_after_cancel += starts.iter().filter(|s| **s > at).count() as u64;
                }
                Some("requested") => report.cancels_of_running += 1,
                _ => {}
            }
        } else if let (Some(paused), Some(resuming)) =
            (line["paused"].as_i64(), line["resuming"].as_i64())
        {
            report.pauses += 1;
            let (from, to) = (paused + grace, resuming);
            report.started_while_paused += ledgers
                .times
                .iter()
                .filter(|t| **t > from && **t < to)
                .count() as u64;
        }
    }
}

/// Reads the journals, ledgers and the database of a run in `dir` and
/// reports its figures.
pub async fn check(
    queue: &Queue,
    dir: &Path,
    ordered: bool,
    faults: &[(i64, i64)],
    limited: Option<std::time::Duration>,
    timeline: bool,
) -> Report {
    let mut report = Report::default();
    let journals = read_journals(dir, &mut report);
    let mut ledgers = read_ledgers(dir, &mut report, &journals.intended);
    if timeline {
        print_timeline(&ledgers.times, faults);
    }
    recovery(&mut report, &ledgers.times, faults);
    check_control(dir, &mut report, &ledgers);
    let counters = &ledgers.counters;
    report.stale_completions_refused = counters.values().map(|(refused, _)| refused).sum();
    report.handed_over = counters.values().map(|(_, handed)| handed).sum();
    report.duplicated_tasks = ledgers.runs.values().filter(|n| **n > 1).count() as u64;
    report.most_runs_of_one_task = ledgers.runs.values().copied().max().unwrap_or(0);
    if ordered {
        report.out_of_order = ledgers.order.windows(2).filter(|w| w[0] >= w[1]).count() as u64;
    }
    let present = read_tasks(queue, &mut report, &mut ledgers.follow_ups).await;
    let ticks = crate::ticks::check(&crate::ticks::lines(dir), &all_tasks(queue).await);
    report.ticks = ticks.ticks;
    report.ticks_enqueued_twice = ticks.enqueued_twice;
    report.ticks_missed = ticks.missed;
    if let Some(lease) = limited {
        let overlaps = crate::limits::check(dir, lease);
        report.limit_most_running = overlaps.most;
        report.limit_exceeded = overlaps.exceeded;
        report.limit_exceeded_while_a_dead_lease_held = overlaps.exceeded_with_unfinished;
    }
    let there = |i: &u64| ledgers.executed.contains(i) || present.contains(i);
    report.lost = journals.acked.iter().filter(|i| !there(i)).count() as u64;
    report.stale_completions_accepted = ledgers
        .follow_ups
        .values()
        .filter(|ids| ids.len() > 1)
        .count() as u64;
    report.stale_completions_attempted =
        report.stale_completions_refused + report.stale_completions_accepted;
    for (first, n) in journals.batches {
        let seen = (first..first + n).filter(|i| there(i)).count() as u64;
        if seen != 0 && seen != n {
            report.partial_batches += 1;
        }
    }
    report
}
