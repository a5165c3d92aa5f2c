//! What each scenario runs: how many workers, tasks, faults and kill
//! points.

use std::time::Duration;

use crate::cli::ScenarioName;

/// One scenario's shape.
pub(crate) struct Plan {
    pub(crate) workers: usize,
    pub(crate) concurrency: usize,
    pub(crate) count: u64,
    pub(crate) batch: u64,
    pub(crate) pause_ms: u64,
    pub(crate) lease: Duration,
    pub(crate) poison_every: u64,
    pub(crate) failpoints: Option<&'static str>,
    pub(crate) workers_after_producer: bool,
    pub(crate) work_ms: u64,
    /// Tasks each worker process enqueues through its own queue, one at a
    /// time (see [`ScenarioName::HandOver`]).
    pub(crate) produce_each: u64,
    /// When the first fault comes: late enough, where it matters, to
    /// measure the rate of work before it.
    pub(crate) first_fault: Duration,
    /// The producer enqueues diamonds (see `workflows.rs`).
    pub(crate) diamonds: bool,
}

pub(crate) fn plan(scenario: ScenarioName, short: bool) -> Plan {
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
        diamonds: false,
    };
    match scenario {
        ScenarioName::KillWorkers => Plan {
            failpoints: Some("after-effect=0.002,before-commit=0.002,inside-completion=0.002"),
            ..base
        },
        // Slower enqueues, so that the schedule ticks through a run of
        // about ten seconds (short) or two minutes.
        ScenarioName::Schedules => Plan {
            failpoints: Some("after-effect=0.002,before-commit=0.002,inside-completion=0.002"),
            pause_ms: 50,
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
        ScenarioName::CancelPause => Plan {
            failpoints: Some("after-effect=0.002,before-commit=0.002"),
            count: scale(2_000, 10_000),
            pause_ms: 10,
            work_ms: 20,
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
        ScenarioName::KillBackends => Plan {
            pause_ms: 10,
            count: scale(3_000, 10_000),
            first_fault: Duration::from_secs(1),
            ..base
        },
        ScenarioName::Workflows => Plan {
            failpoints: Some("after-effect=0.002,before-commit=0.002,inside-completion=0.002"),
            batch: 8,
            diamonds: true,
            ..base
        },
        ScenarioName::All => unreachable!("expanded by the caller"),
    }
}
