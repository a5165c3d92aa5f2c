//! `taskq-chaos`: runs producers and workers as separate processes, kills
//! and pauses them at random or at exact kill points, and checks that
//! nothing acknowledged was lost. `taskq-chaos run --help` lists the
//! scenarios; RELIABILITY.md has the figures of the last full run.

mod check;
mod cli;
mod control;
mod fleet;
mod limits;
mod plan;
mod roles;
mod scenario;
mod ticks;
mod workflows;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use cli::{Cli, Role, ScenarioName, SCENARIOS};
use roles::Produce;

/// Runs the scenarios asked for and prints each report; fails if any
/// figure that must be zero is not.
fn run_role(
    runtime: &tokio::runtime::Runtime,
    backend: &str,
    scenario: ScenarioName,
    postgres_url: Option<String>,
    (short, json, timeline): (bool, bool, bool),
) -> ExitCode {
    if matches!(
        scenario,
        ScenarioName::StopServer | ScenarioName::KillBackends
    ) && backend != "postgres"
    {
        eprintln!("taskq-chaos: {scenario:?} is a PostgreSQL scenario");
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
        let run = scenario::run_scenario(scenario, backend, &base, short, timeline);
        let report = runtime.block_on(run);
        let violations = report.violations();
        if json {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
        } else {
            println!("{}", report.summary());
        }
        if !violations.is_empty() || (report.integrity != "ok" && report.integrity != "n/a") {
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
            diamonds,
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
                diamonds,
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
                    diamonds: false,
                });
            let work = Duration::from_millis(work_ms);
            runtime.block_on(roles::work(
                &url,
                &ledger,
                concurrency,
                work,
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
        } => run_role(
            &runtime,
            &backend,
            scenario,
            postgres_url,
            (short, json, timeline),
        ),
    }
}
