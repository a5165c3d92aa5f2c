//! One scenario from start to report: the fleet, the faults while the
//! producer runs, the recovery, and the check.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use taskq::{ListOptions, Queue, State, FOREVER};

use crate::check;
use crate::cli::ScenarioName;
use crate::control;
use crate::fleet::Fleet;
use crate::plan::plan;
use crate::roles::{self, unix_micros, ACTION, FOLLOW_UP};

/// The queued and running tasks of the run; `None` if they cannot be
/// listed now.
async fn unfinished(queue: &Queue) -> Option<Vec<taskq::Task>> {
    let mut tasks = Vec::new();
    for state in [State::Queued, State::Running] {
        let mut after = None;
        loop {
            let options = ListOptions {
                state: Some(state),
                after,
                limit: 1_000,
                ..ListOptions::default()
            };
            let page = queue.list(&options).await.ok()?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            tasks.extend(
                page.into_iter()
                    .filter(|task| task.action == ACTION || task.action == FOLLOW_UP),
            );
        }
    }
    Some(tasks)
}

/// Whether a task is a poison task, and whether it retries forever.
fn poison(task: &taskq::Task) -> Option<bool> {
    let payload = task.payload_json::<roles::Payload>().ok()?;
    payload.poison.then_some(task.max_tries == FOREVER)
}

/// Work still to do: queued or running tasks, less poison tasks that
/// retry forever (they back off, and may wait longer than the window).
async fn outstanding(queue: &Queue) -> u64 {
    // Unknown counts as not drained.
    unfinished(queue).await.map_or(u64::MAX, |tasks| {
        tasks
            .iter()
            .filter(|task| poison(task) != Some(true))
            .count() as u64
    })
}

/// Lets poison tasks keep crashing workers until those with limited tries
/// have failed for good (at most `window`); returns the most tries of a
/// poison task that retries forever at that point.
async fn let_poison_fail(queue: &Queue, fleet: &mut Fleet, window: Duration) -> i64 {
    let started = Instant::now();
    loop {
        fleet.revive();
        if let Some(tasks) = unfinished(queue).await {
            let limited_left = tasks.iter().any(|task| poison(task) == Some(false));
            if !limited_left || started.elapsed() >= window {
                return tasks
                    .iter()
                    .filter(|task| poison(task) == Some(true))
                    .map(|task| i64::from(task.tries))
                    .max()
                    .unwrap_or(0);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A database URL of a fresh file in `dir`, or a fresh schema.
fn fresh_url(backend: &str, base_url: &str, dir: &Path) -> String {
    match backend {
        "sqlite" => format!("sqlite://{}", dir.join("chaos.db").display()),
        _ => {
            let separator = if base_url.contains('?') { '&' } else { '?' };
            format!(
                "{base_url}{separator}schema=chaos_{:016x}",
                fastrand::u64(..)
            )
        }
    }
}

/// Whether the scenario's faults are at least three, injected while the
/// producer runs.
fn wants_faults(scenario: ScenarioName) -> bool {
    matches!(
        scenario,
        ScenarioName::KillWorkers
            | ScenarioName::Schedules
            | ScenarioName::HandOver
            | ScenarioName::CancelPause
            | ScenarioName::Workflows
            | ScenarioName::PauseWorkers
            | ScenarioName::StopServer
            | ScenarioName::LockHolder
            | ScenarioName::KillBackends
    )
}

/// The faults of a run while its producer runs.
struct Faults<'a> {
    scenario: ScenarioName,
    fleet: &'a mut Fleet,
    db: &'a Path,
    /// The PostgreSQL server's URL, without a schema.
    server: &'a str,
    producer: std::process::Child,
    producer_kills: u32,
    ranges: u64,
    injected: u32,
}

impl Faults<'_> {
    /// A producer of a fresh range of numbers, as a restarted one has.
    fn restart_producer(&mut self) {
        self.ranges += 1;
        let count = self.fleet.plan.count;
        self.producer = self
            .fleet
            .spawn_producer(self.ranges * 1_000_000_000, count / 4);
    }

    /// Injects the scenario's next fault.
    fn inject(&mut self) {
        match self.scenario {
            ScenarioName::KillWorkers
            | ScenarioName::Schedules
            | ScenarioName::HandOver
            | ScenarioName::Workflows
            | ScenarioName::CancelPause => {
                self.fleet.kill_worker();
                self.injected += 1;
            }
            ScenarioName::PauseWorkers => {
                self.fleet.pause_worker();
                self.injected += 1;
            }
            ScenarioName::LockHolder if self.injected < 3 => {
                let hold = if self.injected == 2 { 11 } else { 2 };
                let started = unix_micros();
                hold_write_lock(self.db, Duration::from_secs(hold));
                self.fleet.faults.push((started, unix_micros()));
                self.injected += 1;
            }
            ScenarioName::StopServer if self.injected < 3 => {
                let started = unix_micros();
                server("TASKQ_TEST_POSTGRES_STOP");
                std::thread::sleep(Duration::from_secs(2));
                server("TASKQ_TEST_POSTGRES_START");
                self.fleet.faults.push((started, unix_micros()));
                self.injected += 1;
            }
            ScenarioName::KillBackends => {
                let at = unix_micros();
                let killed = kill_backends(self.server);
                self.fleet.faults.push((at, unix_micros()));
                self.injected += u32::from(killed > 0);
            }
            ScenarioName::KillProducer if self.producer_kills < 3 => {
                let at = unix_micros();
                let _ = self.producer.kill();
                let _ = self.producer.wait();
                self.producer_kills += 1;
                self.fleet.faults.push((at, at));
                self.restart_producer();
            }
            _ => {}
        }
    }

    /// Injects faults, reviving what dies, until the producer is done and
    /// enough faults were injected.
    fn run(&mut self) {
        let mut next_fault = Instant::now() + self.fleet.plan.first_fault;
        loop {
            let finished = matches!(self.producer.try_wait(), Ok(Some(_)));
            if finished && self.scenario == ScenarioName::KillProducer && self.producer_kills < 3 {
                // It finished before it was killed three times: another one.
                self.restart_producer();
                continue;
            }
            if finished && (!wants_faults(self.scenario) || self.injected >= 3) {
                return;
            }
            self.fleet.revive();
            if Instant::now() >= next_fault {
                self.inject();
                let gap = match self.scenario {
                    ScenarioName::KillProducer => fastrand::u64(50..400),
                    // Each kill takes every connection: the workers make
                    // new ones before the next.
                    ScenarioName::KillBackends => fastrand::u64(1_000..2_500),
                    _ => fastrand::u64(300..1_500),
                };
                next_fault = Instant::now() + Duration::from_millis(gap);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// After the faults: poison tasks stop crashing workers once those with
/// limited tries have failed, and everything left must be worked off
/// within the window. Returns the tasks still outstanding, and the most
/// tries of a poison task that retries forever (when there are poison
/// tasks).
async fn recover(queue: &Queue, fleet: &mut Fleet, short: bool) -> (u64, Option<i64>) {
    let window = if short {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(120)
    };
    // Workers restarted from now on enqueue nothing; those running finish
    // their share.
    fleet.producing = false;
    let mut forever_tries = None;
    if fleet.plan.poison_every > 0 {
        forever_tries = Some(let_poison_fail(queue, fleet, window).await);
        fleet.defuse();
    }
    let calm = Instant::now();
    let mut stuck = outstanding(queue).await;
    while stuck > 0 && calm.elapsed() < window {
        fleet.revive();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stuck = outstanding(queue).await;
    }
    (stuck, forever_tries)
}

/// Runs one scenario on one backend and checks it.
pub(crate) async fn run_scenario(
    scenario: ScenarioName,
    backend: &str,
    base_url: &str,
    short: bool,
    timeline: bool,
) -> check::Report {
    let dir = tempfile::tempdir().expect("a run directory");
    let url = fresh_url(backend, base_url, dir.path());
    let queue = Queue::connect(&url).await.expect("connect");
    let mut fleet = Fleet::new(url, dir.path().to_path_buf(), plan(scenario, short));
    let count = fleet.plan.count;
    let producer = fleet.spawn_producer(0, count);
    let db = dir.path().join("chaos.db");
    let mut faults = Faults {
        scenario,
        fleet: &mut fleet,
        db: &db,
        server: base_url,
        producer,
        producer_kills: 0,
        ranges: 0,
        injected: 0,
    };
    if faults.fleet.plan.workers_after_producer {
        let _ = faults.producer.wait();
    }
    if scenario == ScenarioName::Schedules {
        crate::ticks::declare(&queue).await;
        crate::limits::set(&queue).await;
    }
    faults.fleet.spawn_workers();
    let stop_control = Arc::new(AtomicBool::new(false));
    let controller = (scenario == ScenarioName::CancelPause).then(|| {
        let (queue, dir, stop) = (
            queue.clone(),
            dir.path().to_path_buf(),
            Arc::clone(&stop_control),
        );
        tokio::spawn(async move { control::run(queue, &dir, stop).await })
    });
    faults.run();
    stop_control.store(true, Ordering::Relaxed);
    if let Some(controller) = controller {
        let _ = controller.await;
    }

    let (stuck, forever_tries) = recover(&queue, &mut fleet, short).await;
    let drained = fleet
        .faults
        .last()
        .map_or(0.0, |(_, end)| (unix_micros() - end) as f64 / 1e6);
    fleet.stop();

    let ordered = scenario == ScenarioName::Ordered;
    let limited = (scenario == ScenarioName::Schedules).then_some(fleet.plan.lease);
    let mut report = check::check(
        &queue,
        dir.path(),
        ordered,
        &fleet.faults,
        limited,
        timeline,
    )
    .await;
    report.scenario = format!("{scenario:?}");
    report.reruns_forbidden = scenario == ScenarioName::KillBackends;
    if scenario == ScenarioName::Workflows {
        let early = crate::workflows::check(dir.path());
        report.dependent_runs = early.dependent_runs;
        report.ran_before_dependencies = early.ran_early;
    }
    report.backend = backend.to_string();
    report.drained_seconds = drained;
    report.stuck = stuck;
    if let Some(tries) = forever_tries {
        // Measured before the poison was defused: some of those tasks may
        // have completed since.
        report.poison_forever_most_tries = tries;
    }
    report.integrity = if backend == "sqlite" {
        integrity(&db)
    } else {
        "n/a".to_string()
    };
    report
}

/// Holds SQLite's write lock on `path` for `hold`, as another process
/// with a long transaction would.
fn hold_write_lock(path: &Path, hold: Duration) {
    let conn = rusqlite::Connection::open(path).expect("open the database");
    conn.busy_timeout(Duration::from_secs(30))
        .expect("busy timeout");
    conn.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    std::thread::sleep(hold);
    conn.execute_batch("ROLLBACK")
        .expect("give the write lock back");
}

/// Kills the server process of every taskq connection to the database
/// of `url` (taskq names its connections `taskq`), and returns how many.
fn kill_backends(url: &str) -> u64 {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect to kill backends");
            tokio::spawn(connection);
            let killed = client
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = 'taskq' AND datname = current_database()
                       AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .expect("kill backends");
            killed.len() as u64
        })
    })
    .join()
    .expect("the killer thread")
}

/// Runs the server command named by an environment variable.
fn server(variable: &str) {
    let command = std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set; run the stop-server scenario through scripts/chaos")
    });
    let status = Command::new("sh")
        .args(["-c", &command])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run the server command");
    assert!(status.success(), "{variable} failed: {status}");
}

fn integrity(path: &Path) -> String {
    rusqlite::Connection::open(path)
        .and_then(|conn| conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)))
        .unwrap_or_else(|e| e.to_string())
}
