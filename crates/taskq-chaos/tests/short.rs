//! The short version of every fault scenario, on SQLite and on the test
//! PostgreSQL server (`./scripts/test` starts one and sets
//! `TASKQ_TEST_POSTGRES_URL`). The harness exits non-zero when a figure
//! that must be zero is not: tasks lost, unexpected or stuck, partial
//! batches, stale completions accepted, tasks out of order, ticks of a
//! schedule enqueued twice or missed, dependents run before their
//! dependencies.

use std::process::Command;

fn run(backend: &str, postgres_url: Option<&str>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskq-chaos"));
    command.args(["run", "--short", "--backend", backend]);
    if let Some(url) = postgres_url {
        command.args(["--postgres-url", url]);
    }
    let output = command.output().expect("run the harness");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().count(),
        10,
        "every scenario reported: {stdout}"
    );
    assert!(
        stdout.lines().all(|line| line.contains("lost 0;")),
        "{stdout}"
    );
    // The hand-over scenario handed tasks over (it counts them).
    let hand_over = stdout
        .lines()
        .find(|line| line.contains("HandOver:"))
        .expect("the hand-over scenario reported");
    assert!(!hand_over.contains("handed over 0;"), "{hand_over}");
    // The workflows scenario ran dependents, none before its dependencies
    // (a figure the harness fails on).
    let workflows = stdout
        .lines()
        .find(|line| line.contains("Workflows:"))
        .expect("the workflows scenario reported");
    assert!(!workflows.contains("runs of dependents 0,"), "{workflows}");
    // The schedules scenario's schedule ticked while workers were killed.
    let schedules = stdout
        .lines()
        .find(|line| line.contains("Schedules:"))
        .expect("the schedules scenario reported");
    assert!(!schedules.contains("ticks 0,"), "{schedules}");
}

#[test]
fn faults_on_sqlite_lose_nothing() {
    run("sqlite", None);
}

#[test]
fn faults_on_postgres_lose_nothing() {
    let url = std::env::var("TASKQ_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "the PostgreSQL scenarios need a server: run ./scripts/test, or set \
             TASKQ_TEST_POSTGRES_URL (install PostgreSQL with: sudo apt-get install postgresql)"
        )
    });
    run("postgres", Some(&url));
}
