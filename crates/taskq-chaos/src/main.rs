//! `taskq-chaos`: runs producers and workers as separate processes, kills
//! and pauses them at random or at exact kill points, and checks that
//! nothing acknowledged was lost. `taskq-chaos run --help` lists the
//! scenarios; RELIABILITY.md has the figures of the last full run.

mod check;
mod roles;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use taskq::{ListOptions, Queue, State, FOREVER};

use roles::{unix_micros, Produce, ACTION, FOLLOW_UP};

#[derive(Debug, Parser)]
#[command(name = "taskq-chaos")]
struct Cli {
    #[command(subcommand)]
    command: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Run scenarios and print their figures; exits 1 if any figure that
    /// must be zero is not.
    Run {
        /// sqlite or postgres.
        #[arg(long, default_value = "sqlite")]
        backend: String,
        /// The scenario, or all.
        #[arg(long, value_enum, default_value = "all")]
        scenario: ScenarioName,
        /// The short version: a few seconds per scenario.
        #[arg(long)]
        short: bool,
        /// The PostgreSQL server (scripts/chaos starts a throwaway one).
        #[arg(long, env = "TASKQ_CHAOS_POSTGRES_URL", hide_env_values = true)]
        postgres_url: Option<String>,
        /// Print the reports as JSON lines.
        #[arg(long)]
        json: bool,
        /// Also print, to stderr, the executions of each second of a run
        /// and when its faults began and ended.
        #[arg(long)]
        timeline: bool,
    },
    /// (Internal) enqueue tasks, journaling each batch.
    Produce {
        #[arg(long)]
        url: String,
        #[arg(long)]
        journal: PathBuf,
        #[arg(long)]
        start: u64,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        batch: u64,
        #[arg(long)]
        lease_ms: u64,
        #[arg(long, default_value_t = 0)]
        poison_every: u64,
        #[arg(long, default_value_t = 5)]
        pause_ms: u64,
    },
    /// (Internal) work tasks until SIGTERM, recording each execution.
    Work {
        #[arg(long)]
        url: String,
        #[arg(long)]
        ledger: PathBuf,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        #[arg(long, default_value_t = 2)]
        work_ms: u64,
        /// Poison tasks complete instead of aborting the process.
        #[arg(long)]
        defused: bool,
        /// Also enqueue this many tasks, one at a time, through the
        /// worker's own queue (handed over to idle handlers), numbered
        /// from --start and journaled in --journal.
        #[arg(long, default_value_t = 0, requires = "journal")]
        produce: u64,
        #[arg(long, default_value_t = 0)]
        start: u64,
        #[arg(long)]
        journal: Option<PathBuf>,
        #[arg(long, default_value_t = 2_000)]
        lease_ms: u64,
        #[arg(long, default_value_t = 5)]
        pause_ms: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScenarioName {
    /// Workers killed at random (SIGKILL) and at exact kill points while a
    /// producer enqueues steadily; the supervisor restarts them.
    KillWorkers,
    /// The producer killed at random, also mid-batch: each batch is all or
    /// nothing.
    KillProducer,
    /// Workers paused (SIGSTOP) past their lease, then resumed: their late
    /// completions are refused and follow-ups exist once.
    PauseWorkers,
    /// Tasks that abort their worker: they end failed after their tries,
    /// or back off when they retry forever.
    Poison,
    /// No faults, four workers: no task runs twice.
    Clean,
    /// No faults, one worker with one handler: tasks run in claim order.
    Ordered,
    /// Workers that also enqueue, one task at a time through their own
    /// queue, so that idle handlers are handed tasks claimed by the
    /// enqueue; killed at random and at exact kill points (one between
    /// such an insert and the hand-over).
    HandOver,
    /// SQLite: another process holds the write lock, twice for two seconds
    /// (callers wait) and once for eleven (past the ten-second busy
    /// timeout: callers fail with a typed busy error). Not part of `all`.
    LockHolder,
    /// PostgreSQL stopped with `pg_ctl -m immediate` for two seconds, three
    /// times: producers and workers carry on without a restart. Needs
    /// TASKQ_TEST_POSTGRES_STOP and TASKQ_TEST_POSTGRES_START (set by
    /// scripts/with-postgres); not part of `all`, because it stops the
    /// server for everyone.
    StopServer,
    /// Every scenario above.
    All,
}

const SCENARIOS: [ScenarioName; 7] = [
    ScenarioName::KillWorkers,
    ScenarioName::KillProducer,
    ScenarioName::PauseWorkers,
    ScenarioName::Poison,
    ScenarioName::Clean,
    ScenarioName::Ordered,
    ScenarioName::HandOver,
];

/// One scenario's shape.
struct Plan {
    workers: usize,
    concurrency: usize,
    count: u64,
    batch: u64,
    pause_ms: u64,
    lease: Duration,
    poison_every: u64,
    failpoints: Option<&'static str>,
    workers_after_producer: bool,
    work_ms: u64,
    /// Tasks each worker process enqueues through its own queue, one at a
    /// time (see [`ScenarioName::HandOver`]).
    produce_each: u64,
    /// When the first fault comes: late enough, where it matters, to
    /// measure the rate of work before it.
    first_fault: Duration,
}

fn plan(scenario: ScenarioName, short: bool) -> Plan {
    let scale = |short_n: u64, full_n: u64| if short { short_n } else { full_n };
    let base = Plan {
        workers: 3,
        concurrency: 4,
        count: scale(1_500, 20_000),
        batch: 10,
        pause_ms: 5,
        lease: Duration::from_secs(2),
        poison_every: 0,
        failpoints: None,
        workers_after_producer: false,
        work_ms: 2,
        produce_each: 0,
        first_fault: Duration::from_millis(fastrand::u64(300..1_000)),
    };
    match scenario {
        ScenarioName::KillWorkers => Plan {
            failpoints: Some("after-effect=0.002,before-commit=0.002,inside-completion=0.002"),
            ..base
        },
        ScenarioName::KillProducer => Plan {
            batch: 100,
            pause_ms: 5,
            count: scale(3_000, 30_000),
            ..base
        },
        ScenarioName::PauseWorkers => Plan {
            lease: Duration::from_secs(1),
            count: scale(400, 4_000),
            pause_ms: 30,
            work_ms: 100,
            ..base
        },
        ScenarioName::Poison => Plan {
            poison_every: 50,
            count: scale(1_000, 10_000),
            lease: Duration::from_secs(1),
            ..base
        },
        ScenarioName::Clean => Plan {
            workers: 4,
            count: scale(5_000, 50_000),
            batch: 1_000,
            pause_ms: 0,
            workers_after_producer: true,
            ..base
        },
        ScenarioName::Ordered => Plan {
            workers: 1,
            concurrency: 1,
            count: scale(1_000, 10_000),
            batch: 1_000,
            pause_ms: 0,
            workers_after_producer: true,
            ..base
        },
        ScenarioName::HandOver => Plan {
            failpoints: Some("handed-over=0.005,after-effect=0.002,before-commit=0.002"),
            batch: 1,
            pause_ms: 20,
            count: scale(300, 3_000),
            concurrency: 2,
            produce_each: scale(200, 1_000),
            ..base
        },
        ScenarioName::LockHolder => Plan {
            pause_ms: 20,
            count: scale(5_000, 10_000),
            first_fault: Duration::from_secs(5),
            ..base
        },
        ScenarioName::StopServer => Plan {
            pause_ms: 20,
            count: scale(3_000, 10_000),
            first_fault: Duration::from_secs(5),
            ..base
        },
        ScenarioName::All => unreachable!("expanded by the caller"),
    }
}

/// The processes of a run, restarted when they die.
struct Fleet {
    url: String,
    dir: PathBuf,
    plan: Plan,
    workers: Vec<Child>,
    generation: usize,
    /// Each fault's start and end, in Unix microseconds.
    faults: Vec<(i64, i64)>,
    /// Whether workers started from now on let poison tasks complete.
    defused: bool,
    /// Whether workers started from now on enqueue tasks of their own.
    producing: bool,
}

fn me() -> Command {
    Command::new(std::env::current_exe().expect("the harness binary"))
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status();
}

impl Fleet {
    fn spawn_worker(&mut self) -> Child {
        self.generation += 1;
        let mut command = me();
        command
            .args([
                "work",
                "--url",
                &self.url,
                "--concurrency",
                &self.plan.concurrency.to_string(),
                "--work-ms",
                &self.plan.work_ms.to_string(),
            ])
            .arg("--ledger")
            .arg(
                self.dir
                    .join(format!("ledger-{:04}.jsonl", self.generation)),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(points) = self.plan.failpoints {
            command.env("TASKQ_FAILPOINTS", points);
        }
        if self.defused {
            command.arg("--defused");
        }
        if self.producing && self.plan.produce_each > 0 {
            // Numbers of its own, clear of the producers' ranges.
            let start = (1_000 + self.generation as u64) * 1_000_000_000;
            command
                .args(["--produce", &self.plan.produce_each.to_string()])
                .args(["--start", &start.to_string()])
                .args(["--lease-ms", &self.plan.lease.as_millis().to_string()])
                .args(["--pause-ms", &self.plan.pause_ms.to_string()])
                .arg("--journal")
                .arg(
                    self.dir
                        .join(format!("producer-w{:04}.jsonl", self.generation)),
                );
        }
        command.spawn().expect("start a worker")
    }

    fn spawn_producer(&mut self, start: u64, count: u64) -> Child {
        self.generation += 1;
        me().args(["produce", "--url", &self.url])
            .arg("--journal")
            .arg(
                self.dir
                    .join(format!("producer-{:04}.jsonl", self.generation)),
            )
            .args(["--start", &start.to_string(), "--count", &count.to_string()])
            .args(["--batch", &self.plan.batch.to_string()])
            .args(["--lease-ms", &self.plan.lease.as_millis().to_string()])
            .args(["--poison-every", &self.plan.poison_every.to_string()])
            .args(["--pause-ms", &self.plan.pause_ms.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a producer")
    }

    /// Restarts workers that died by themselves (poison, kill points).
    fn revive(&mut self) {
        for index in 0..self.workers.len() {
            if matches!(self.workers[index].try_wait(), Ok(Some(_))) {
                let at = unix_micros();
                self.workers[index] = self.spawn_worker();
                self.faults.push((at, at));
            }
        }
    }

    fn kill_worker(&mut self) {
        let index = fastrand::usize(..self.workers.len());
        let at = unix_micros();
        let _ = self.workers[index].kill();
        let _ = self.workers[index].wait();
        self.workers[index] = self.spawn_worker();
        self.faults.push((at, at));
    }

    fn pause_worker(&mut self) {
        let index = fastrand::usize(..self.workers.len());
        let started = unix_micros();
        signal(&self.workers[index], "STOP");
        std::thread::sleep(self.plan.lease * 5 / 2);
        signal(&self.workers[index], "CONT");
        self.faults.push((started, unix_micros()));
    }

    /// Ends the faults that poison tasks cause: workers stop gracefully
    /// and their replacements let poison tasks complete. Tasks that retry
    /// forever wait out their backoff meanwhile.
    fn defuse(&mut self) {
        self.stop();
        self.defused = true;
        for index in 0..self.workers.len() {
            self.workers[index] = self.spawn_worker();
        }
    }

    fn stop(&mut self) {
        for worker in &self.workers {
            signal(worker, "TERM");
        }
        for worker in &mut self.workers {
            let _ = worker.wait();
        }
    }
}

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

async fn run_scenario(
    scenario: ScenarioName,
    backend: &str,
    base_url: &str,
    short: bool,
    timeline: bool,
) -> check::Report {
    let dir = tempfile::tempdir().expect("a run directory");
    let url = match backend {
        "sqlite" => format!("sqlite://{}", dir.path().join("chaos.db").display()),
        _ => {
            let separator = if base_url.contains('?') { '&' } else { '?' };
            format!(
                "{base_url}{separator}schema=chaos_{:016x}",
                fastrand::u64(..)
            )
        }
    };
    let queue = Queue::connect(&url).await.expect("connect");
    let plan = plan(scenario, short);
    let mut fleet = Fleet {
        url: url.clone(),
        dir: dir.path().to_path_buf(),
        plan,
        workers: Vec::new(),
        generation: 0,
        faults: Vec::new(),
        defused: false,
        producing: true,
    };
    let count = fleet.plan.count;
    let mut producer = fleet.spawn_producer(0, count);
    if fleet.plan.workers_after_producer {
        let _ = producer.wait();
    }
    for _ in 0..fleet.plan.workers {
        let worker = fleet.spawn_worker();
        fleet.workers.push(worker);
    }

    // Faults while the producer runs, and at least three of them.
    let mut producer_kills = 0;
    let mut ranges = 0;
    let mut faults = 0;
    let wants_faults = matches!(
        scenario,
        ScenarioName::KillWorkers
            | ScenarioName::HandOver
            | ScenarioName::PauseWorkers
            | ScenarioName::StopServer
            | ScenarioName::LockHolder
    );
    let mut next_fault = Instant::now() + fleet.plan.first_fault;
    loop {
        let finished = matches!(producer.try_wait(), Ok(Some(_)));
        if finished && scenario == ScenarioName::KillProducer && producer_kills < 3 {
            // It finished before it was killed three times: another one.
            ranges += 1;
            producer = fleet.spawn_producer(ranges * 1_000_000_000, count / 4);
            continue;
        }
        if finished && (!wants_faults || faults >= 3) {
            break;
        }
        fleet.revive();
        if Instant::now() >= next_fault {
            match scenario {
                ScenarioName::KillWorkers | ScenarioName::HandOver => {
                    fleet.kill_worker();
                    faults += 1;
                }
                ScenarioName::PauseWorkers => {
                    fleet.pause_worker();
                    faults += 1;
                }
                ScenarioName::LockHolder if faults < 3 => {
                    let hold = if faults == 2 { 11 } else { 2 };
                    let started = unix_micros();
                    hold_write_lock(&dir.path().join("chaos.db"), Duration::from_secs(hold));
                    fleet.faults.push((started, unix_micros()));
                    faults += 1;
                }
                ScenarioName::StopServer if faults < 3 => {
                    let started = unix_micros();
                    server("TASKQ_TEST_POSTGRES_STOP");
                    std::thread::sleep(Duration::from_secs(2));
                    server("TASKQ_TEST_POSTGRES_START");
                    fleet.faults.push((started, unix_micros()));
                    faults += 1;
                }
                ScenarioName::KillProducer if producer_kills < 3 => {
                    let at = unix_micros();
                    let _ = producer.kill();
                    let _ = producer.wait();
                    producer_kills += 1;
                    fleet.faults.push((at, at));
                    // A fresh range of numbers for the restarted producer.
                    ranges += 1;
                    producer = fleet.spawn_producer(ranges * 1_000_000_000, count / 4);
                }
                _ => {}
            }
            let gap = if scenario == ScenarioName::KillProducer {
                fastrand::u64(50..400)
            } else {
                fastrand::u64(300..1_500)
            };
            next_fault = Instant::now() + Duration::from_millis(gap);
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // Recovery: faults stop (poison tasks stop crashing workers once those
    // with limited tries have failed); everything left must be worked off.
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
        forever_tries = Some(let_poison_fail(&queue, &mut fleet, window).await);
        fleet.defuse();
    }
    let calm = Instant::now();
    let mut stuck = outstanding(&queue).await;
    while stuck > 0 && calm.elapsed() < window {
        fleet.revive();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stuck = outstanding(&queue).await;
    }
    let drained = fleet
        .faults
        .last()
        .map_or(0.0, |(_, end)| (unix_micros() - end) as f64 / 1e6);
    fleet.stop();

    let ordered = scenario == ScenarioName::Ordered;
    let mut report = check::check(&queue, dir.path(), ordered, &fleet.faults, timeline).await;
    report.scenario = format!("{scenario:?}");
    report.backend = backend.to_string();
    report.drained_seconds = drained;
    report.stuck = stuck;
    if let Some(tries) = forever_tries {
        // Measured before the poison was defused: some of those tasks may
        // have completed since.
        report.poison_forever_most_tries = tries;
    }
    report.integrity = if backend == "sqlite" {
        integrity(&dir.path().join("chaos.db"))
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match cli.command {
        Role::Produce {
            url,
            journal,
            start,
            count,
            batch,
            lease_ms,
            poison_every,
            pause_ms,
        } => {
            runtime.block_on(roles::produce(Produce {
                url: &url,
                journal: &journal,
                start,
                count,
                batch,
                lease: Duration::from_millis(lease_ms),
                poison_every,
                pause: Duration::from_millis(pause_ms),
            }));
            ExitCode::SUCCESS
        }
        Role::Work {
            url,
            ledger,
            concurrency,
            work_ms,
            defused,
            produce,
            start,
            journal,
            lease_ms,
            pause_ms,
        } => {
            let alongside = journal
                .as_deref()
                .filter(|_| produce > 0)
                .map(|journal| Produce {
                    url: &url,
                    journal,
                    start,
                    count: produce,
                    batch: 1,
                    lease: Duration::from_millis(lease_ms),
                    poison_every: 0,
                    pause: Duration::from_millis(pause_ms),
                });
            runtime.block_on(roles::work(
                &url,
                &ledger,
                concurrency,
                Duration::from_millis(work_ms),
                defused,
                alongside,
            ));
            ExitCode::SUCCESS
        }
        Role::Run {
            backend,
            scenario,
            short,
            postgres_url,
            json,
            timeline,
        } => {
            if scenario == ScenarioName::StopServer && backend != "postgres" {
                eprintln!("taskq-chaos: stop-server is a PostgreSQL scenario");
                return ExitCode::from(2);
            }
            if scenario == ScenarioName::LockHolder && backend != "sqlite" {
                eprintln!("taskq-chaos: lock-holder is a SQLite scenario");
                return ExitCode::from(2);
            }
            if backend != "sqlite" && postgres_url.is_none() {
                eprintln!("taskq-chaos: the postgres backend needs --postgres-url (scripts/chaos starts a server)");
                return ExitCode::from(2);
            }
            let base = postgres_url.unwrap_or_default();
            let scenarios: Vec<ScenarioName> = match scenario {
                ScenarioName::All => SCENARIOS.to_vec(),
                one => vec![one],
            };
            let mut failed = false;
            for scenario in scenarios {
                let report =
                    runtime.block_on(run_scenario(scenario, &backend, &base, short, timeline));
                let violations = report.violations();
                if json {
                    println!("{}", serde_json::to_string(&report).unwrap_or_default());
                } else {
                    println!(
                        "{backend} {:?}: enqueued {}/{} acknowledged ({} failed, {} of them busy, {} in doubt); lost {}; \
                         unexpected {}; stuck {}; partial batches {}; executions {} ({} tasks ran more than once, \
                         at most {} times); stale completions attempted {}, refused {}, accepted {}; handed over {}; failed for good {}; \
                         poison-forever tries {}; out of order {}; resumed within {:.2} s of a fault; \
                         executions/s {:.0} before faults, {:.0} at least after one; drained {:.1} s after the last; \
                         left after stop {}; integrity {}",
                        scenario,
                        report.enqueues_acknowledged,
                        report.enqueues_attempted,
                        report.enqueues_failed,
                        report.enqueues_busy,
                        report.enqueues_indeterminate,
                        report.lost,
                        report.unexpected,
                        report.stuck,
                        report.partial_batches,
                        report.executions,
                        report.duplicated_tasks,
                        report.most_runs_of_one_task,
                        report.stale_completions_attempted,
                        report.stale_completions_refused,
                        report.stale_completions_accepted,
                        report.handed_over,
                        report.failed_for_good,
                        report.poison_forever_most_tries,
                        report.out_of_order,
                        report.resumed_seconds,
                        report.throughput_before,
                        report.throughput_after_min,
                        report.drained_seconds,
                        report.left_after_stop,
                        report.integrity,
                    );
                }
                if !violations.is_empty() || (report.integrity != "ok" && report.integrity != "n/a")
                {
                    eprintln!(
                        "taskq-chaos: {backend} {scenario:?} FAILED: {violations:?}, integrity {}",
                        report.integrity
                    );
                    failed = true;
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
