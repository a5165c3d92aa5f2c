//! `taskq dashboard` as a user runs it, on SQLite and PostgreSQL: it says
//! where it listens, serves the pages and the metrics of the database it
//! was given, refuses an address other machines reach without a token,
//! and stops cleanly on SIGTERM.

mod database;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use database::{both, stop, wait_until};

/// A GET of `path` from `address`, as raw HTTP/1.1: the status line and
/// the whole response.
fn fetch(address: &str, path: &str, host: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_dashboard_serves_pages_and_metrics_until_stopped() {
    for db in both() {
        let id = db.json(&["enqueue", "email", "{\"to\":\"ada\"}"])["id"].to_string();
        let mut child = db
            .command(&["--json", "dashboard", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let said: serde_json::Value = serde_json::from_str(&first).unwrap();
        let address = said["listening"].as_str().unwrap().to_owned();
        assert!(said["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"));

        let overview = fetch(&address, "/", "localhost");
        assert!(overview.starts_with("HTTP/1.1 200"), "{overview}");
        assert!(overview.contains("email") && !overview.contains("password"));
        let task = fetch(&address, &format!("/tasks/{id}"), "127.0.0.1");
        assert!(task.contains("&#34;to&#34;: &#34;ada&#34;"), "{task}");
        let metrics = fetch(&address, "/metrics", "localhost");
        assert!(
            metrics.contains("taskq_tasks{action=\"email\",state=\"queued\"} 1"),
            "{metrics}"
        );
        let rebound = fetch(&address, "/", "attacker.example");
        assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
        stop(child);
    }
}

#[test]
fn stats_and_list_show_what_the_dashboard_shows() {
    for db in both() {
        let id = db.json(&["enqueue", "email", "1", "--max-tries", "1"])["id"].to_string();
        let child =
            db.json(&["enqueue", "email", "2", "--parent", &id, "--delay", "1h"])["id"].clone();
        db.ok(&["enqueue", "other", "3"]);
        let stats = db.json(&["stats"]);
        assert!(
            stats["actions"][0]["oldest_ready"]
                .as_str()
                .unwrap()
                .ends_with('Z'),
            "{stats}"
        );
        assert!(db.ok(&["stats"]).stdout.contains("OLDEST READY"));
        // The one due task of `email` fails for good with its command's error.
        let worker = db
            .command(&[
                "work",
                "email",
                "--",
                "sh",
                "-c",
                "echo 'SMTP Timeout' >&2; exit 1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the task to fail", 30, || db.stats("email")["failed"] == 1);
        stop(worker);
        let matched = db.json(&["list", "--error", "timeout"]);
        assert_eq!(matched.as_array().unwrap().len(), 1, "{matched}");
        assert_eq!(matched[0]["id"].to_string(), id);
        assert_eq!(
            db.json(&["list", "--error", "refused"]),
            serde_json::json!([])
        );
        let children = db.json(&["list", "--parent", &id]);
        assert_eq!(children.as_array().unwrap().len(), 1, "{children}");
        assert_eq!(children[0]["id"], child);
        let bad = db.run(&["list", "--parent", "0"]);
        assert_eq!(bad.code, 2, "{}", bad.stderr);
    }
}

#[test]
fn an_address_other_machines_reach_needs_a_token() {
    for db in both() {
        let refused = db.run(&["dashboard", "--listen", "0.0.0.0:0"]);
        assert_eq!(refused.code, 2, "{}", refused.stderr);
        assert!(
            refused.stderr.contains("give a token"),
            "{}",
            refused.stderr
        );
        let empty = db
            .command(&["dashboard", "--listen", "0.0.0.0:0"])
            .env("TASKQ_DASHBOARD_TOKEN", " ")
            .output()
            .unwrap();
        assert_eq!(empty.status.code(), Some(2));
        assert!(
            !String::from_utf8_lossy(&empty.stderr).contains(&db.url),
            "the URL is not printed"
        );
    }
}
