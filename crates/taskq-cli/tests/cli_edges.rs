//! The `taskq` binary at the edges a new user and a script meet: closed
//! pipes, payloads and durations that are almost right, errors as JSON,
//! empty results and counts in words, commands that only look, wake-ups
//! sent by a process that ends at once, and a worker on a database it
//! cannot write. On SQLite and on PostgreSQL.

mod database;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use database::{both, postgres, sqlite};

/// Runs `args` with standard output read by `head -c 1`, which closes its
/// end after one byte; returns the exit code and standard error.
fn into_closed_pipe(db: &database::Db, args: &[&str]) -> (i32, String) {
    let mut taskq = db
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = taskq.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    stdout.read_exact(&mut byte).unwrap();
    drop(stdout);
    let output = taskq.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    for db in both() {
        let big = db.dir.path().join("big.json");
        std::fs::write(&big, format!("\"{}\"", "x".repeat(300_000))).unwrap();
        let id = db.json(&["enqueue", "big", "--file", big.to_str().unwrap()])["id"].to_string();
        let lines: String = (0..400).map(|n| format!("{{\"n\": {n}}}\n")).collect();
        std::fs::write(db.dir.path().join("many.jsonl"), lines).unwrap();
        db.ok(&["bulk", "many", "many.jsonl"]);
        for args in [
            vec!["show", id.as_str()],
            vec!["--json", "list", "--limit", "500"],
            vec!["list", "--limit", "500"],
            vec!["completions", "bash"],
            vec!["man"],
        ] {
            let (code, stderr) = into_closed_pipe(&db, &args);
            assert_eq!(code, 0, "{args:?}: {stderr}");
            assert!(stderr.is_empty(), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn json_payloads_must_be_valid_utf8_and_durations_storable() {
    for db in both() {
        let output = db.run_bytes(&["enqueue", "a", "-"], b"\"\xff\xfe\"");
        assert_eq!(output.code, 2, "{}", output.stderr);
        assert!(
            output.stderr.contains("not valid JSON"),
            "{}",
            output.stderr
        );
        let lines = b"{\"ok\": 1}\n\"\xff\"\n";
        std::fs::write(db.dir.path().join("bad.jsonl"), lines).unwrap();
        let output = db.run(&["bulk", "a", "bad.jsonl"]);
        assert_eq!(output.code, 2, "{}", output.stderr);
        assert!(output.stderr.contains("line 2"), "{}", output.stderr);
        let cases: [(&[&str], &str); 4] = [
            (&["enqueue", "a", "1", "--timeout", "1ns"], "timeout"),
            (&["enqueue", "a", "1", "--timeout", "-5s"], "negative"),
            (&["enqueue", "a", "1", "--delay", "-1m"], "negative"),
            (
                &["purge", "--state", "failed", "--older-than", "-7d"],
                "negative",
            ),
        ];
        for (args, words) in cases {
            let output = db.run(args);
            assert_eq!(output.code, 2, "{args:?}: {}", output.stderr);
            assert!(output.stderr.contains(words), "{args:?}: {}", output.stderr);
        }
        // Raw bytes stay possible, on purpose.
        db.ok(&["enqueue", "a", "--raw", "-"]);
        assert_eq!(db.stats("a")["queued"], 1, "only the raw one went in");
    }
}

#[test]
fn errors_under_json_are_json_and_empty_results_say_so() {
    for db in both() {
        db.ok(&["migrate"]);
        let output = db.run(&["--json", "enqueue"]);
        assert_eq!(output.code, 2, "{}", output.stderr);
        let error: Value = serde_json::from_str(output.stderr.trim())
            .unwrap_or_else(|e| panic!("{e}: {}", output.stderr));
        assert_eq!(error["error"]["kind"], "invalid_input");
        let output = db.run(&["--json", "show", "424242"]);
        assert_eq!(output.code, 3);
        let error: Value = serde_json::from_str(output.stderr.trim())
            .unwrap_or_else(|e| panic!("{e}: {}", output.stderr));
        assert_eq!(error["error"]["kind"], "not_found");
        assert_eq!(error["error"]["code"], 3);
        assert!(error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("424242"));

        assert_eq!(db.ok(&["list"]).stdout.trim(), "no tasks");
        assert_eq!(db.ok(&["stats"]).stdout.trim(), "no tasks");
        assert_eq!(db.json(&["list"]), Value::Array(Vec::new()));

        std::fs::write(db.dir.path().join("one.jsonl"), "1\n").unwrap();
        let output = db.ok(&["bulk", "one", "one.jsonl"]);
        assert_eq!(output.stdout.trim(), "enqueued 1 task in 1 batch");
        let output = db.ok(&["requeue-expired"]);
        assert_eq!(output.stdout.trim(), "requeued 0 tasks");
    }
}

#[test]
fn commands_that_only_look_create_nothing() {
    let db = sqlite();
    let file = db.dir.path().join("cli.db");
    for args in [
        ["stats"].as_slice(),
        &["list"],
        &["len", "a"],
        &["show", "1"],
    ] {
        let output = db.run(args);
        assert_eq!(output.code, 5, "{args:?}: {}", output.stderr);
        assert!(
            output.stderr.contains("there is no SQLite database"),
            "{args:?}: {}",
            output.stderr
        );
        assert!(!file.exists(), "{args:?} created the file");
    }
    let output = db.run(&[
        "--database",
        "sqlite:///no/such/dir/q.db",
        "enqueue",
        "a",
        "1",
    ]);
    assert_eq!(output.code, 5, "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains("the directory /no/such/dir does not exist"),
        "{}",
        output.stderr
    );

    let db = postgres();
    for args in [["stats"].as_slice(), &["list"], &["len", "a"]] {
        let output = db.run(args);
        assert_eq!(output.code, 5, "{args:?}: {}", output.stderr);
        assert!(
            output.stderr.contains("no taskq tables"),
            "{}",
            output.stderr
        );
    }
    let output = db.run(&["--database", &format!("{}_x", db.url), "stats"]);
    assert_eq!(output.code, 5, "{}", output.stderr);
    db.ok(&["migrate"]);
    db.ok(&["stats"]);
    let typo = db.url.replace("?schema=", "?schema=typo_");
    let output = db.run(&["--database", &typo, "stats"]);
    assert_eq!(
        output.code, 5,
        "a mistyped schema is not created: {}",
        output.stderr
    );
    let output = db.run(&["--database", &typo, "--json", "stats"]);
    assert_eq!(output.code, 5, "still not created: {}", output.stderr);
    let output = db.run(&[
        "--database",
        &db.url.replace("?schema=", "?schema=pg_x"),
        "stats",
    ]);
    assert_eq!(output.code, 2, "{}", output.stderr);
}

#[test]
fn an_enqueue_wakes_a_postgres_worker_of_another_process_at_once() {
    let db = postgres();
    db.ok(&["migrate"]);
    let marker = db.dir.path().join("ran");
    let mut worker = db
        .command(&[
            "work",
            "ping",
            "--poll-interval",
            "30s",
            "--",
            "sh",
            "-c",
            &format!("date +%s%N >> {}", marker.display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The worker listens once it logs that it started; give it a moment.
    let mut stderr = worker.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("worker starting") {
        let n = stderr.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "the worker ended: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&chunk[..n]);
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    std::thread::sleep(Duration::from_millis(500));
    let mut latencies = Vec::new();
    for round in 1..=3 {
        let enqueued = Instant::now();
        db.ok(&["enqueue", "ping", "1"]);
        let deadline = enqueued + Duration::from_secs(20);
        loop {
            let runs = std::fs::read_to_string(&marker).unwrap_or_default();
            if runs.lines().count() >= round {
                latencies.push(enqueued.elapsed());
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: never ran");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    database::stop(worker);
    // The worker polls every 30 s: only the enqueue's notification
    // starts each task within the deadline.
    assert_eq!(latencies.len(), 3, "{latencies:?}");
}

#[test]
fn a_worker_on_a_read_only_sqlite_file_stops_with_exit_code_5() {
    let db = sqlite();
    db.ok(&["enqueue", "a", "1"]);
    let dir = db.dir.path();
    let file = dir.join("cli.db");
    let mut perms = std::fs::metadata(&file).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&file, perms).unwrap();
    // Root may write any file: run the worker as an ordinary user then,
    // in a directory it may create the WAL's files in.
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut command = if root {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut command = std::process::Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(assert_cmd::cargo::cargo_bin("taskq"))
            .env("TASKQ_DATABASE_URL", &db.url)
            .current_dir(dir);
        command
    } else {
        db.command(&[])
    };
    let started = Instant::now();
    let output = command
        .args(["work", "a", "--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("read-only"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "no retry loop");
    assert_eq!(db.stats("a")["queued"], 1, "the task is still there");
}

#[test]
fn an_interrupted_bulk_says_what_it_committed() {
    let db = postgres();
    db.ok(&["migrate"]);
    let lines: String = (0..20_000).map(|n| format!("{n}\n")).collect();
    std::fs::write(db.dir.path().join("many.jsonl"), lines).unwrap();
    let bulk = db
        .command(&["bulk", "many", "many.jsonl", "--batch-size", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    database::wait_until("the first batches", 30, || {
        db.stats("many")["queued"].as_u64().unwrap_or(0) > 0
    });
    let status = std::process::Command::new("kill")
        .args(["-INT", &bulk.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = bulk.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let queued = db.stats("many")["queued"].as_u64().unwrap();
    assert!(queued < 20_000, "stopped early: {queued}");
    assert!(
        stderr.contains(&format!(
            "interrupted: {queued} of 20000 tasks were enqueued in {queued} whole batch"
        )),
        "says exactly what is in the database: {stderr}"
    );
}

#[test]
fn an_unknown_scheme_names_the_ones_that_work() {
    let db = sqlite();
    let output = db.run(&["--database", "mysql://u:secret@h/db", "stats"]);
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(output.stderr.contains("sqlite://PATH"), "{}", output.stderr);
    assert!(output.stderr.contains("postgres://"), "{}", output.stderr);
    assert!(!output.stderr.contains("secret"), "{}", output.stderr);
}

impl database::Db {
    /// Runs `args` with `input` (any bytes) on standard input.
    fn run_bytes(&self, args: &[&str], input: &[u8]) -> database::Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let output = child.wait_with_output().unwrap();
        database::Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}
