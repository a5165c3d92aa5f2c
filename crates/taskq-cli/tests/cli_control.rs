//! End-to-end tests of the control commands on SQLite and PostgreSQL:
//! unique keys and priorities on enqueue, cancel, pause and resume, retry
//! with a new key, and the attempts `show` prints.

mod database;

use std::process::Stdio;

use database::{both, stop, wait_until};

#[test]
fn unique_keys_and_priorities_on_enqueue() {
    for db in both() {
        let first = db.json(&["enqueue", "sync", "1", "--unique-key", "c:1"]);
        assert_eq!(first["duplicate"], false);
        let again = db.json(&["enqueue", "sync", "2", "--unique-key", "c:1"]);
        assert_eq!(
            (&again["id"], &again["duplicate"]),
            (&first["id"], &serde_json::json!(true))
        );
        let said = db
            .ok(&["enqueue", "sync", "3", "--unique-key", "c:1"])
            .stdout;
        assert!(
            said.contains("duplicate") && said.contains(&first["id"].to_string()),
            "{said}"
        );
        db.ok(&["enqueue", "sync", "4", "--priority", "-5"]);
        let urgent = db.json(&["list", "--action", "sync"]);
        let priorities: Vec<i64> = urgent
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["priority"].as_i64().unwrap())
            .collect();
        assert_eq!(priorities, [0, -5]);
        let table = db.ok(&["list", "--action", "sync"]).stdout;
        assert!(table.contains("PRIO") && table.contains("-5"), "{table}");
        let stats = db.json(&["stats"]);
        assert_eq!(
            stats["actions"][0]["priorities"],
            serde_json::json!([-5, 0])
        );
        let table = db.ok(&["stats"]).stdout;
        assert!(
            table.contains("PRIORITIES") && table.contains("-5,0"),
            "{table}"
        );
        let shown = db.ok(&["show", &first["id"].to_string()]).stdout;
        assert!(
            shown.contains("c:1 (among waiting, queued, running)"),
            "{shown}"
        );
        // A period and counted finished states need a key.
        let bad = db.run(&["enqueue", "sync", "5", "--unique-per", "1h"]);
        assert_eq!(bad.code, 2, "{}", bad.stderr);
        let per = db.json(&[
            "enqueue",
            "digest",
            "1",
            "--unique-key",
            "u:1",
            "--unique-per",
            "1h",
            "--unique-including",
            "failed",
        ]);
        let task = db.json(&["show", &per["id"].to_string()]);
        assert_eq!(
            task["unique_states"],
            serde_json::json!(["waiting", "queued", "running", "failed"])
        );
        assert!(task["unique_window"].is_string());
    }
}

#[test]
fn cancel_pause_resume_and_retry() {
    for db in both() {
        let id = db.json(&["enqueue", "email", "1"])["id"].to_string();
        let done = db.json(&["cancel", &id]);
        assert_eq!(done["outcome"], "cancelled");
        assert!(db.ok(&["cancel", &id]).stdout.contains("already finished"));
        db.ok(&["enqueue", "email", "2", "--unique-key", "k"]);
        let by_key = db.json(&["cancel", "--action", "email", "--key", "k"]);
        assert_eq!(by_key["outcome"], "cancelled");
        for n in 0..3 {
            db.ok(&["enqueue", "bulk", &n.to_string()]);
        }
        let many = db.json(&["cancel", "--action", "bulk", "--state", "queued"]);
        assert_eq!(
            (many["cancelled"].as_u64(), many["requested"].as_u64()),
            (Some(3), Some(0))
        );
        assert_eq!(db.stats("bulk")["cancelled"], 3);
        let table = db.ok(&["stats"]).stdout;
        assert!(
            table.contains("CANCELLED") && table.contains("PAUSED"),
            "{table}"
        );
        assert_eq!(db.run(&["cancel", "987654"]).code, 3);
        assert_eq!(
            db.run(&["cancel", "--action", "bulk"]).code,
            2,
            "needs --key or --state"
        );

        // Pause: enqueues work, nothing is ready, stats say so.
        assert!(db.ok(&["pause", "email"]).stdout.contains("paused"));
        assert_eq!(db.json(&["pause", "email"])["changed"], false);
        db.ok(&["enqueue", "email", "3"]);
        assert_eq!(db.json(&["len", "email"])["ready"], 0);
        assert_eq!(db.stats("email")["paused"], true);
        assert!(db.ok(&["stats"]).stdout.contains("paused"));
        assert_eq!(db.json(&["resume", "email"])["changed"], true);
        assert_eq!(db.json(&["len", "email"])["ready"], 1);

        // Retry a cancelled task; with its key taken, only with a new one.
        let old = db.json(&["enqueue", "job", "1", "--unique-key", "j"])["id"].to_string();
        db.ok(&["cancel", &old]);
        db.ok(&["enqueue", "job", "2", "--unique-key", "j"]);
        let refused = db.run(&["retry", &old]);
        assert_eq!(refused.code, 4, "{}", refused.stderr);
        assert!(refused.stderr.contains("holds it"), "{}", refused.stderr);
        db.ok(&["retry", &old, "--new-key", "j2"]);
        assert_eq!(db.json(&["show", &old])["unique_key"], "j2");
        let again = db.json(&["retry", "--action", "bulk", "--cancelled"]);
        assert_eq!(again["retried"].as_array().unwrap().len(), 3);
    }
}

#[test]
fn show_prints_each_attempt_and_who_ran_it() {
    for db in both() {
        let id = db.json(&["enqueue", "flaky", "1", "--max-tries", "2"])["id"].to_string();
        let worker = db
            .command(&[
                "work",
                "flaky",
                "--name",
                "night-shift",
                "--",
                "sh",
                "-c",
                "echo nope >&2; exit 3",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the task to fail for good", 60, || {
            db.stats("flaky")["failed"] == 1
        });
        stop(worker);
        let shown = db.ok(&["show", &id]).stdout;
        assert!(
            shown.contains("attempts") && shown.contains("OUTCOME"),
            "{shown}"
        );
        assert!(
            shown.contains("retried") && shown.contains("failed"),
            "{shown}"
        );
        assert!(shown.contains("night-shift"), "{shown}");
        let task = db.json(&["show", &id]);
        let attempts = task["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0]["outcome"], "retried");
        assert_eq!(attempts[1]["worker"]["name"], "night-shift");
        assert!(attempts[1]["error"].as_str().unwrap().contains("nope"));
    }
}

#[test]
fn a_cancel_stops_the_command_of_a_running_task() {
    for db in both() {
        // A lease of 3 s: a heartbeat every second.
        let id = db.json(&["enqueue", "slow", "1", "--timeout", "3s"])["id"].to_string();
        let worker = db
            .command(&["work", "slow", "--", "sleep", "600"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the task to run", 30, || db.stats("slow")["running"] == 1);
        let asked = db.json(&["cancel", &id]);
        assert_eq!(asked["outcome"], "requested");
        // Heard through the watch of the file on SQLite, NOTIFY on PostgreSQL.
        wait_until("the task to end cancelled", 30, || {
            db.stats("slow")["cancelled"] == 1
        });
        stop(worker);
        let task = db.json(&["show", &id]);
        assert!(
            task["last_error"].as_str().unwrap().contains("cancelled"),
            "{task}"
        );
    }
}
