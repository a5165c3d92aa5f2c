//! The command line of the harness: its roles and scenarios.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "taskq-chaos")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Role,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Role {
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
        /// Enqueue each batch as diamonds of four tasks that wait for
        /// each other.
        #[arg(long)]
        diamonds: bool,
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
pub(crate) enum ScenarioName {
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
    /// Workers killed at random while a controller cancels queued and
    /// running tasks and pauses the action now and then: nothing is lost,
    /// no task cancelled while queued runs after, and no task starts while
    /// the action is paused.
    CancelPause,
    /// Workers killed at random while a schedule ticks every second and
    /// the harness's action is limited to five at once across the fleet:
    /// each worker enqueues due ticks, no tick is enqueued twice or
    /// missed, and no more than five tasks ever run at once.
    Schedules,
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
    /// PostgreSQL: the server process of every taskq connection killed
    /// (`pg_terminate_backend`) now and then while workers complete
    /// tasks: writes in flight are tried once more on a fresh connection,
    /// so nothing is lost and a task runs twice only when its first run
    /// had not finished. Not part of `all`.
    KillBackends,
    /// Workers killed at random and at exact kill points while the
    /// producer enqueues its tasks as diamonds (one task, then two that
    /// wait for it, then one that waits for both): nothing is lost, and no
    /// task starts before each task it waits for has finished a run.
    Workflows,
    /// Every scenario above.
    All,
}

pub(crate) const SCENARIOS: [ScenarioName; 10] = [
    ScenarioName::KillWorkers,
    ScenarioName::KillProducer,
    ScenarioName::PauseWorkers,
    ScenarioName::Poison,
    ScenarioName::Clean,
    ScenarioName::Ordered,
    ScenarioName::HandOver,
    ScenarioName::CancelPause,
    ScenarioName::Schedules,
    ScenarioName::Workflows,
];
