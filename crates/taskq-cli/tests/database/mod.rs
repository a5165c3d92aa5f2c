//! A database for one test of the `taskq` binary (a SQLite file in a temp
//! dir, or a fresh schema on the test server), and the binary run on it.

#![allow(dead_code, reason = "each test file uses what it needs")]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

/// A database for one test: a SQLite file in a temp dir, or a fresh
/// schema on the test server.
pub struct Db {
    pub url: String,
    pub dir: tempfile::TempDir,
}

pub fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    Db { url, dir }
}

pub fn postgres() -> Db {
    let base = std::env::var("TASKQ_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "the PostgreSQL tests need a server: run ./scripts/test, or set \
             TASKQ_TEST_POSTGRES_URL (install PostgreSQL with: sudo apt-get install postgresql)"
        )
    });
    let schema = format!("cli_{:016x}", rand_u64());
    let separator = if base.contains('?') { '&' } else { '?' };
    Db {
        url: format!("{base}{separator}schema={schema}"),
        dir: tempfile::tempdir().unwrap(),
    }
}

/// A fresh schema on the test server reached through PgBouncer in
/// transaction mode (`scripts/with-postgres` starts it), with prepared
/// statements off as the URL says.
pub fn pgbouncer() -> Db {
    let base = std::env::var("TASKQ_TEST_PGBOUNCER_URL").unwrap_or_else(|_| {
        panic!(
            "the PgBouncer tests need PgBouncer: run ./scripts/test, which starts one when it \
             is installed (sudo apt-get install pgbouncer), or set TASKQ_TEST_PGBOUNCER_URL"
        )
    });
    let schema = format!("cli_{:016x}", rand_u64());
    let separator = if base.contains('?') { '&' } else { '?' };
    Db {
        url: format!("{base}{separator}schema={schema}&prepared_statements=false"),
        dir: tempfile::tempdir().unwrap(),
    }
}

pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

pub fn both() -> [Db; 2] {
    [sqlite(), postgres()]
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", self.stdout))
    }
}

impl Db {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(cargo_bin("taskq"));
        command
            .args(args)
            .env("TASKQ_DATABASE_URL", &self.url)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, None)
    }

    pub fn run_with_input(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut command = self.command(args);
        if input.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = input {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let output = child.wait_with_output().unwrap();
        let result = Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert!(!result.stderr.contains("panicked"), "{}", result.stderr);
        result
    }

    pub fn ok(&self, args: &[&str]) -> Output {
        let output = self.run(args);
        assert_eq!(output.code, 0, "{args:?}: {}", output.stderr);
        output
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    pub fn stats(&self, action: &str) -> Value {
        let stats = self.json(&["stats"]);
        stats["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["action"] == action)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

/// Waits until `done` holds, looking every 20 ms, failing the test after
/// `seconds`.
pub fn wait_until(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "waited too long for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM and waits for a clean exit.
pub fn stop(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "the worker stops cleanly on SIGTERM"
    );
}
