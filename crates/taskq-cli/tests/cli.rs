//! End-to-end tests of the `taskq` binary on SQLite and on PostgreSQL
//! (`./scripts/test` starts a throwaway server and sets
//! `TASKQ_TEST_POSTGRES_URL`).

mod database;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use database::{both, sqlite, stop, wait_until};

#[test]
fn enqueue_and_inspect_round_trip() {
    for db in both() {
        let id = db.json(&["enqueue", "email", r#"{"to": "ada"}"#])["id"]
            .as_i64()
            .unwrap();
        let piped = db.run_with_input(
            &["--json", "enqueue", "email", "-"],
            Some(r#"{"to": "bob"}"#),
        );
        assert_eq!(piped.code, 0, "{}", piped.stderr);
        std::fs::write(db.dir.path().join("p.json"), r#"{"to": "cy"}"#).unwrap();
        db.ok(&[
            "enqueue",
            "email",
            "--file",
            "p.json",
            "--max-tries",
            "-1",
            "--timeout",
            "5m",
        ]);
        db.ok(&["enqueue", "email", "--delay", "1h"]);
        db.ok(&[
            "enqueue",
            "other",
            "--run-at",
            "2020-01-01T00:00:00Z",
            "--parent",
            &id.to_string(),
        ]);

        assert_eq!(db.ok(&["len", "email"]).stdout.trim(), "3");
        assert_eq!(db.json(&["len", "email"])["ready"], 3);
        let email = db.stats("email");
        assert_eq!(
            (email["queued"].as_u64(), email["failed"].as_u64()),
            (Some(4), Some(0))
        );

        let list = db.json(&["list", "--action", "email"]);
        let payloads: Vec<&Value> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["payload"])
            .collect();
        assert_eq!(
            payloads[..3],
            [
                &serde_json::json!({"to": "ada"}),
                &serde_json::json!({"to": "bob"}),
                &serde_json::json!({"to": "cy"})
            ]
        );
        assert_eq!(list[2]["max_tries"], -1);
        assert_eq!(list[2]["timeout_ms"], 300_000);
        assert_eq!(list[3]["payload"], Value::Null);
        let newest = db.json(&["list", "--newest", "--limit", "1"]);
        assert_eq!(newest[0]["action"], "other");
        assert_eq!(newest[0]["parent"], id);
        let page = db.json(&["list", "--after", &id.to_string(), "--limit", "2"]);
        assert_eq!(page.as_array().unwrap().len(), 2);

        let shown = db.json(&["show", &id.to_string()]);
        assert_eq!(
            (shown["state"].as_str(), shown["tries"].as_i64()),
            (Some("queued"), Some(0))
        );
        let human = db.ok(&["show", &id.to_string()]).stdout;
        assert!(
            human.contains("\"to\": \"ada\"") && human.contains("state        queued"),
            "{human}"
        );
        let table = db.ok(&["stats"]).stdout;
        assert!(
            table.starts_with("ACTION") && table.contains("email"),
            "{table}"
        );
    }
}

#[test]
fn bad_input_gets_a_clear_message_and_its_exit_code() {
    for db in both() {
        let cases: [(&[&str], i32, &str); 7] = [
            (&["enqueue", "a", "{not json"], 2, "not valid JSON"),
            (&["enqueue", "", "1"], 2, "action"),
            (&["enqueue", "a", "1", "--max-tries", "-5"], 2, "max_tries"),
            (&["enqueue", "a", "1", "--delay", "soon"], 2, "30s"),
            (&["show", "987654"], 3, "does not exist"),
            (&["show", "abc"], 2, "not a task id"),
            (
                &["purge", "--state", "queued", "--older-than", "1d"],
                2,
                "only failed, succeeded or cancelled",
            ),
        ];
        for (args, code, words) in cases {
            let output = db.run(args);
            assert_eq!(output.code, code, "{args:?}: {}", output.stderr);
            assert!(output.stderr.contains(words), "{args:?}: {}", output.stderr);
        }
        let id = db.json(&["enqueue", "a", "1"])["id"].to_string();
        let output = db.run(&["retry", &id]);
        assert_eq!(output.code, 4, "{}", output.stderr);
        assert!(output.stderr.contains("queued"), "{}", output.stderr);
        assert_eq!(
            db.json(&["len", "a"])["ready"],
            1,
            "nothing else was written"
        );
    }
    let db = sqlite();
    std::fs::write(
        db.dir.path().join("notes.txt"),
        "not a database at all\n".repeat(100),
    )
    .unwrap();
    let output = db
        .command(&["--database", "notes.txt", "stats"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a SQLite database"));
    let output = db.run(&["--database", "mysql://u:secret@h/db", "stats"]);
    assert_eq!(output.code, 2, "{}", output.stderr);
    let output = db.run(&["--database", "postgres://u:hunter2@127.0.0.1:1/db", "stats"]);
    assert_eq!(output.code, 5, "{}", output.stderr);
    assert!(!output.stderr.contains("hunter2"), "{}", output.stderr);
}

#[test]
fn bulk_enqueue_is_all_or_nothing() {
    for db in both() {
        let good: String = (0..2500).map(|i| format!("{{\"n\": {i}}}\n")).collect();
        std::fs::write(db.dir.path().join("good.jsonl"), &good).unwrap();
        let done = db.json(&["bulk", "nums", "good.jsonl", "--batch-size", "1000"]);
        assert_eq!(
            (done["enqueued"].as_u64(), done["batches"].as_u64()),
            (Some(2500), Some(3))
        );
        assert_eq!(db.json(&["len", "nums"])["ready"], 2500);

        let bad = "{\"n\": 1}\n\n{\"n\": 2}\n{\"n\": oops}\n{\"n\": 4}\n";
        std::fs::write(db.dir.path().join("bad.jsonl"), bad).unwrap();
        let output = db.run(&["bulk", "bad", "bad.jsonl", "--batch-size", "1"]);
        assert_eq!(output.code, 2);
        assert!(output.stderr.contains("line 4"), "{}", output.stderr);
        assert_eq!(
            db.json(&["len", "bad"])["ready"],
            0,
            "nothing of a bad file"
        );

        let piped = db.run_with_input(&["--json", "bulk", "piped", "-"], Some("1\n2\n3\n"));
        assert_eq!(piped.json()["enqueued"], 3);
    }
}

#[test]
fn administration_commands() {
    for db in both() {
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(
                db.json(&["enqueue", "adm", &i.to_string(), "--max-tries", "1"])["id"].to_string(),
            );
        }
        // Fail two tasks through a worker whose command fails.
        let worker = db
            .command(&["work", "adm", "--", "sh", "-c", "echo broken >&2; exit 1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the worker to fail the tasks", 30, || {
            db.stats("adm")["failed"] == 3
        });
        stop(worker);
        let failed = db.json(&["list", "--state", "failed"]);
        assert_eq!(failed.as_array().unwrap().len(), 3);
        assert!(failed[0]["last_error"].as_str().unwrap().contains("broken"));

        assert_eq!(
            db.json(&["retry", &ids[0]])["retried"][0].to_string(),
            ids[0]
        );
        let all = db.json(&["retry", "--action", "adm", "--failed"]);
        assert_eq!(all["retried"].as_array().unwrap().len(), 2);
        assert_eq!(db.stats("adm")["queued"], 3);
        assert_eq!(db.json(&["delete", &ids[1]])["deleted"].to_string(), ids[1]);
        assert_eq!(db.run(&["delete", &ids[1]]).code, 3);
        assert_eq!(
            db.json(&["purge", "--state", "failed", "--older-than", "7d"])["purged"],
            0
        );
        assert_eq!(db.json(&["requeue-expired"])["requeued"], 0);
        assert_eq!(db.json(&["migrate"])["migrated"], true);
        let retry = db.run(&["retry"]);
        assert_eq!(retry.code, 2, "an id or --action is needed");
    }
}

#[test]
fn work_runs_a_command_per_task() {
    // Through PgBouncer too: every command the test runs, the worker's
    // claims and completions among them, with prepared statements off.
    let [sqlite, postgres] = both();
    for db in [sqlite, postgres, database::pgbouncer()] {
        let log = db.dir.path().join("log.txt");
        let script = format!(
            "read payload; echo \"$TASKQ_TASK_ID $TASKQ_ACTION $TASKQ_TRY $payload\" >> {}; \
             case \"$payload\" in *bad*) echo 'cannot do bad things' >&2; exit 7;; esac",
            log.display()
        );
        let good = db.json(&["enqueue", "shell", r#""good""#])["id"].to_string();
        let bad = db.json(&["enqueue", "shell", r#""bad""#, "--max-tries", "2"])["id"].to_string();
        let worker = db
            .command(&[
                "work",
                "shell",
                "--concurrency",
                "2",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the bad task to fail for good", 60, || {
            db.stats("shell")["failed"] == 1
        });
        stop(worker);
        assert_eq!(db.run(&["show", &good]).code, 3, "the good task completed");
        let failed = db.json(&["show", &bad]);
        assert_eq!(failed["tries"], 2);
        let error = failed["last_error"].as_str().unwrap();
        assert!(
            error.contains("exited with code 7") && error.contains("cannot do bad things"),
            "{error}"
        );
        let lines = std::fs::read_to_string(&log).unwrap();
        assert!(
            lines.contains(&format!("{good} shell 1 \"good\"")),
            "{lines}"
        );
        assert!(lines.contains(&format!("{bad} shell 2 \"bad\"")), "{lines}");
    }
}

#[test]
fn work_survives_sigterm_with_nothing_lost() {
    for db in both() {
        let started = db.dir.path().join("started");
        let script = format!("touch {}; sleep 30", started.display());
        let id = db.json(&["enqueue", "slow", "1"])["id"].to_string();
        let worker = db
            .command(&[
                "work",
                "slow",
                "--shutdown-timeout",
                "300ms",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the command to start", 30, || started.exists());
        let stopping = Instant::now();
        stop(worker);
        assert!(
            stopping.elapsed() < Duration::from_secs(10),
            "the grace period is bounded"
        );
        let task = db.json(&["show", &id]);
        assert_eq!(
            (task["state"].as_str(), task["tries"].as_i64()),
            (Some("queued"), Some(0))
        );
        assert_eq!(
            db.json(&["len", "slow"])["ready"],
            1,
            "released to run again at once"
        );
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    let db = sqlite();
    let commands = [
        "migrate",
        "enqueue",
        "bulk",
        "len",
        "stats",
        "list",
        "show",
        "retry",
        "delete",
        "purge",
        "requeue-expired",
        "work",
    ];
    for command in commands {
        let help = db.ok(&[command, "--help"]).stdout;
        assert!(
            help.contains("Example"),
            "{command} --help has no example:\n{help}"
        );
        // Each example on a line of its own, not run together by wrapping.
        assert!(
            help.lines().all(|line| line.matches("taskq ").count() <= 1),
            "{command} --help:\n{help}"
        );
    }
    let help = db.ok(&["--help"]).stdout;
    assert!(
        help.contains("taskq.db") && help.contains("Exit codes"),
        "{help}"
    );
}

#[test]
fn show_gives_a_tasks_result() {
    for db in both() {
        let queue = taskq::blocking::Queue::connect(&db.url).unwrap();
        let id = queue.enqueue("resize", &"cat.png").unwrap();
        let lease = queue.claim("resize").unwrap().unwrap();
        let result =
            taskq::TaskResult::json(&serde_json::json!({"thumbnail": "small.png"})).unwrap();
        lease.complete_with_result(result, Vec::new()).unwrap();
        let shown = db.json(&["show", &id.to_string()]);
        assert_eq!(shown["state"], "succeeded");
        assert_eq!(
            shown["result"],
            serde_json::json!({"thumbnail": "small.png"})
        );
        let human = db.ok(&["show", &id.to_string()]).stdout;
        assert!(
            human.contains("result\n  {\n    \"thumbnail\": \"small.png\""),
            "{human}"
        );
        let listed = db.json(&["list", "--state", "succeeded"]);
        assert_eq!(listed[0]["result"]["thumbnail"], "small.png");
    }
}

#[test]
fn show_graph_and_retry_follow_a_workflow() {
    for db in both() {
        let queue = taskq::blocking::Queue::connect(&db.url).unwrap();
        let mut flow = taskq::Workflow::new();
        let step = |name: &str| taskq::NewTask::json("step", &name).unwrap().max_tries(1);
        flow.add("charge", step("charge"), &[]).unwrap();
        flow.add("ship", step("ship"), &["charge"]).unwrap();
        flow.add("email", step("email"), &["charge"]).unwrap();
        flow.add("close", step("close"), &["ship", "email"])
            .unwrap();
        let ids = queue.enqueue_workflow(flow).unwrap();
        let (charge, close) = (ids.id("charge").unwrap(), ids.id("close").unwrap());

        let shown = db.json(&["show", &close.to_string()]);
        assert_eq!(shown["state"], "waiting");
        assert_eq!(shown["waiting_on"], 2);
        assert_eq!(shown["dependencies"].as_array().unwrap().len(), 2);
        let human = db.ok(&["show", &close.to_string()]).stdout;
        assert!(
            human.contains("waiting (for 2 of its dependencies)"),
            "{human}"
        );

        let graph = db.ok(&["graph", &close.to_string()]).stdout;
        assert!(
            graph.starts_with(&format!("{charge} step [queued]\n")),
            "{graph}"
        );
        assert!(
            graph.contains("(see above)"),
            "the sink under both branches: {graph}"
        );
        let json = db.json(&["graph", &charge.to_string()]);
        assert_eq!(json["nodes"].as_array().unwrap().len(), 4);
        assert_eq!(json["edges"].as_array().unwrap().len(), 4);

        queue
            .claim("step")
            .unwrap()
            .unwrap()
            .fail("card declined")
            .unwrap();
        let shown = db.json(&["show", &close.to_string()]);
        assert_eq!(shown["state"], "cancelled", "cancelled down the graph");
        db.ok(&["retry", &charge.to_string(), "--with-dependents"]);
        let shown = db.json(&["show", &close.to_string()]);
        assert_eq!(shown["state"], "waiting");
        assert_eq!(shown["waiting_on"], 2, "for both branches again");

        let added = db.json(&["enqueue", "audit", "{}", "--after", &close.to_string()]);
        let audit = added["id"].as_i64().unwrap();
        let shown = db.json(&["show", &audit.to_string()]);
        assert_eq!(shown["state"], "waiting");
        assert_eq!(shown["dependencies"][0]["id"], close.0);
    }
}
