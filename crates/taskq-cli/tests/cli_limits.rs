//! End-to-end tests of `taskq limit` on SQLite and PostgreSQL: limits set,
//! listed with the slots taken, shown in `stats`, kept by `taskq work`,
//! and cleared; and tasks enqueued with a concurrency key.

mod database;

use database::{both, stop, wait_until};
use serde_json::{json, Value};

#[test]
fn limits_are_set_listed_shown_in_stats_and_cleared() {
    for db in both() {
        let set = db.json(&[
            "limit",
            "set",
            "charge",
            "--concurrency",
            "2",
            "--rate",
            "20/1s",
        ]);
        assert_eq!(
            set,
            json!({"action": "charge", "concurrency": 2, "per_key": null,
                   "rate": {"count": 20, "per_seconds": 1.0}})
        );
        let said = db.ok(&["limit", "set", "import", "--per-key", "1"]);
        assert_eq!(said.stdout.trim(), "import is limited to 1 per key");
        let keyed = db.json(&["enqueue", "import", "1", "--concurrency-key", "ada"]);
        let shown = db.json(&["show", &keyed["id"].to_string()]);
        assert_eq!(shown["concurrency_key"], "ada");
        assert!(db
            .ok(&["show", &keyed["id"].to_string()])
            .stdout
            .contains("ada"));

        let listed = db.json(&["limit", "list"]);
        let actions: Vec<&Value> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["action"])
            .collect();
        assert_eq!(actions, [&json!("charge"), &json!("import")]);
        assert_eq!(
            (
                &listed[0]["running"],
                &listed[0]["tokens"],
                &listed[1]["busy_keys"]
            ),
            (&json!(0), &json!(20), &json!(0))
        );
        let table = db.ok(&["limit", "list"]).stdout;
        assert!(table.contains("LIMITED ACTION"), "{table}");
        assert!(table.contains("0/2"), "{table}");
        let stats = db.json(&["stats"]);
        assert_eq!(stats["limits"].as_array().unwrap().len(), 2, "{stats}");
        assert!(db.ok(&["stats"]).stdout.contains("LIMITED ACTION"));

        let cleared = db.json(&["limit", "clear", "charge"]);
        assert_eq!(cleared, json!({"action": "charge", "cleared": true}));
        let again = db.ok(&["limit", "clear", "charge"]).stdout;
        assert_eq!(again.trim(), "charge had no limits");
        assert_eq!(db.json(&["limit", "list"]).as_array().unwrap().len(), 1);
    }
}

#[test]
fn bad_limits_are_usage_errors() {
    for db in both() {
        for args in [
            &["limit", "set", "a"][..],
            &["limit", "set", "a", "--concurrency", "0"],
            &["limit", "set", "a", "--rate", "fast"],
            &["limit", "set", "a", "--rate", "5/0s"],
            &["limit", "set", "", "--per-key", "1"],
        ] {
            let out = db.run(args);
            assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        }
        assert_eq!(db.json(&["limit", "list"]), json!([]));
    }
}

#[test]
fn work_keeps_a_concurrency_limit_across_two_workers() {
    for db in both() {
        db.ok(&["limit", "set", "slow", "--concurrency", "1"]);
        for i in 0..6 {
            db.ok(&["enqueue", "slow", &i.to_string()]);
        }
        // Each task appends its start and end to a file; two workers of
        // four slots each must never overlap.
        let ledger = db.dir.path().join("ledger");
        let script = format!(
            "echo start >> {0}; sleep 0.1; echo end >> {0}",
            ledger.display()
        );
        let work = |db: &database::Db| {
            db.command(&[
                "work",
                "slow",
                "--concurrency",
                "4",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .spawn()
            .unwrap()
        };
        let workers = [work(&db), work(&db)];
        wait_until("every task ran", 60, || {
            db.stats("slow").is_null()
                && std::fs::read_to_string(&ledger).is_ok_and(|l| l.lines().count() == 12)
        });
        workers.into_iter().for_each(stop);
        let ledger = std::fs::read_to_string(&ledger).unwrap();
        let lines: Vec<&str> = ledger.lines().collect();
        for pair in lines.chunks(2) {
            assert_eq!(pair, ["start", "end"], "two ran at once:\n{ledger}");
        }
    }
}
