//! End-to-end tests of `taskq schedule` on SQLite and PostgreSQL: adding,
//! listing, pausing, resuming, running now and removing schedules, their
//! place in `stats`, and `taskq work` enqueuing their ticks; and `taskq
//! work` removing finished tasks past their retention.

mod database;

use std::process::Stdio;

use database::{both, stop, wait_until};
use serde_json::{json, Value};

/// The stored schedule `name`, as `schedule list --json` gives it.
fn listed(db: &database::Db, name: &str) -> Value {
    let all = db.json(&["schedule", "list"]);
    let found = all.as_array().unwrap().iter().find(|s| s["name"] == name);
    found.cloned().unwrap_or(Value::Null)
}

/// Adds (or declares again) a nightly schedule in Berlin.
const NIGHTLY: [&str; 13] = [
    "schedule",
    "add",
    "nightly",
    "report",
    r#"{"full": true}"#,
    "--cron",
    "0 3 * * *",
    "--zone",
    "Europe/Berlin",
    "--priority",
    "-3",
    "--max-tries",
    "2",
];

#[test]
fn schedules_are_added_listed_paused_run_and_removed() {
    for db in both() {
        let added = db.json(&NIGHTLY);
        assert_eq!(added["upserted"], "created");
        assert!(
            added["next_at"].as_str().unwrap().ends_with(":00:00Z"),
            "{added}"
        );
        let again = db.json(&NIGHTLY);
        assert_eq!(
            (&again["upserted"], &again["next_at"]),
            (&json!("unchanged"), &added["next_at"])
        );
        let said = db.ok(&[
            "schedule", "add", "beat", "ping", "--every", "30s", "--missed", "skip",
        ]);
        assert!(
            said.stdout.contains("schedule beat added; next tick"),
            "{}",
            said.stdout
        );

        let nightly = listed(&db, "nightly");
        assert_eq!(
            (
                &nightly["cron"],
                &nightly["zone"],
                &nightly["priority"],
                &nightly["max_tries"]
            ),
            (
                &json!("0 3 * * *"),
                &json!("Europe/Berlin"),
                &json!(-3),
                &json!(2)
            )
        );
        assert_eq!(nightly["payload"], json!({"full": true}));
        let beat = listed(&db, "beat");
        assert_eq!(
            (&beat["every_ms"], &beat["missed"]),
            (&json!(30_000), &json!("skip"))
        );
        let table = db.ok(&["schedule", "list"]).stdout;
        assert!(
            table.contains("NEXT (LOCAL)") && table.contains("0 3 * * * (Europe/Berlin)"),
            "{table}"
        );
        let stats = db.json(&["stats"]);
        assert_eq!(stats["schedules"].as_array().unwrap().len(), 2, "{stats}");
        assert!(db.ok(&["stats"]).stdout.contains("SCHEDULE"));

        assert_eq!(db.json(&["schedule", "pause", "beat"])["changed"], true);
        assert_eq!(db.json(&["schedule", "pause", "beat"])["changed"], false);
        assert_eq!(listed(&db, "beat")["paused"], true);
        assert_eq!(db.json(&["schedule", "resume", "beat"])["changed"], true);
        let ran = db.json(&["schedule", "run-now", "nightly"]);
        let task = db.json(&["show", &ran["id"].to_string()]);
        assert_eq!(
            (&task["action"], &task["priority"]),
            (&json!("report"), &json!(-3))
        );
        db.ok(&["schedule", "remove", "nightly"]);
        assert_eq!(listed(&db, "nightly"), Value::Null);

        let missing = db.run(&["schedule", "remove", "nightly"]);
        assert_eq!(missing.code, 3, "{}", missing.stderr);
        for bad in [
            ["schedule", "add", "x", "y", "--cron", "61 * * * *"].as_slice(),
            &[
                "schedule",
                "add",
                "x",
                "y",
                "--cron",
                "* * * * *",
                "--zone",
                "Nowhere/Land",
            ],
            &["schedule", "add", "x", "y", "--every", "10ms"],
            &["schedule", "add", "x", "y"],
            &[
                "schedule",
                "add",
                "x",
                "y",
                "--every",
                "1m",
                "--cron",
                "* * * * *",
            ],
            &["schedule", "add", "x", "y", "not json", "--every", "1m"],
        ] {
            let refused = db.run(bad);
            assert_eq!(refused.code, 2, "{bad:?}: {}", refused.stderr);
        }
        assert_eq!(listed(&db, "x"), Value::Null);
    }
}

#[test]
fn a_worker_enqueues_the_ticks_of_every_schedule() {
    for db in both() {
        db.ok(&["schedule", "add", "beat", "ping", "7", "--every", "1s"]);
        let worker = db
            .command(&["work", "ping", "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let last_task = || listed(&db, "beat")["last_task"].as_i64();
        wait_until("a tick to be enqueued", 30, || last_task().is_some());
        let first = last_task();
        wait_until("the next tick to be enqueued", 30, || last_task() != first);
        stop(worker);
        let beat = listed(&db, "beat");
        assert!(beat["last_at"].as_str().unwrap().ends_with('Z'), "{beat}");
        // A worker told not to leaves the ticks alone.
        db.ok(&["schedule", "pause", "beat"]);
        db.ok(&["schedule", "resume", "beat"]);
        let before = listed(&db, "beat")["last_task"].clone();
        let worker = db
            .command(&["work", "ping", "--no-schedules", "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2_500));
        stop(worker);
        assert_eq!(listed(&db, "beat")["last_task"], before);
    }
}

#[test]
fn a_worker_removes_finished_tasks_past_their_retention() {
    for db in both() {
        let failed = db.json(&["enqueue", "flaky", "1", "--max-tries", "1"])["id"].to_string();
        let cancelled = db.json(&["enqueue", "later", "2", "--delay", "1h"])["id"].to_string();
        db.ok(&["cancel", &cancelled]);
        let worker = db
            .command(&[
                "work",
                "flaky",
                "--retain-failed",
                "0s",
                "--retain-cancelled",
                "forever",
                "--retention-every",
                "100ms",
                "--",
                "false",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the failed task to be removed", 30, || {
            db.run(&["show", &failed]).code == 3
        });
        stop(worker);
        assert_eq!(
            db.json(&["show", &cancelled])["state"],
            "cancelled",
            "kept forever"
        );
        let bad = db.run(&["work", "x", "--retain-failed", "soon", "--", "true"]);
        assert_eq!(bad.code, 2, "{}", bad.stderr);
    }
}
