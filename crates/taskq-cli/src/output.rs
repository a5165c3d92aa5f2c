//! Printing results: aligned tables (through `comfy-table`) and human
//! times for people, JSON for scripts.

use std::time::{Duration, SystemTime};

use std::io::Write;

use serde_json::{json, Value};
use taskq::Task;

use crate::failure::Failure;

/// Where and how results are printed. Every write goes to standard output
/// through it, so that a closed pipe (`taskq list | head`) ends the
/// command quietly instead of failing.
pub struct Output {
    pub json: bool,
}

/// A write to standard output that failed: quietly for a closed pipe.
fn written(result: std::io::Result<()>) -> Result<(), Failure> {
    result.map_err(|error| match error.kind() {
        std::io::ErrorKind::BrokenPipe => Failure::closed_pipe(),
        _ => Failure::other(format!("could not write to standard output: {error}")),
    })
}

impl Output {
    /// Prints one line.
    pub fn line(&self, text: impl std::fmt::Display) -> Result<(), Failure> {
        written(writeln!(std::io::stdout().lock(), "{text}"))
    }

    /// Prints bytes as they are (a generated script or page).
    pub fn bytes(&self, bytes: &[u8]) -> Result<(), Failure> {
        written(std::io::stdout().lock().write_all(bytes))
    }

    /// Prints a JSON value, one line.
    pub fn json(&self, value: &Value) -> Result<(), Failure> {
        self.line(value)
    }

    /// Prints rows under a header, each column as wide as its widest cell
    /// and two spaces apart, without lines; `empty` instead when there are
    /// no rows. Never wraps: a long cell widens its column.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>], empty: &str) -> Result<(), Failure> {
        if rows.is_empty() {
            return self.line(empty);
        }
        let mut table = comfy_table::Table::new();
        table
            .load_style(comfy_table::presets::NOTHING)
            .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
            .set_header(header.to_vec())
            .add_rows(rows.iter().cloned());
        for column in table.column_iter_mut() {
            column.set_padding((0, 2));
        }
        let mut out = std::io::stdout().lock();
        for line in table.lines() {
            written(writeln!(out, "{}", line.trim_end()))?;
        }
        Ok(())
    }

    /// Sends what is buffered; a closed pipe is noticed here at the latest.
    pub fn flush(&self) -> Result<(), Failure> {
        written(std::io::stdout().lock().flush())
    }
}

/// `1 task`, `2 tasks`: a count with its noun, singular or plural.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A whole number with thousands separators: `42,438`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// A time in RFC 3339, to the second, in UTC.
pub fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A duration in human form, to the millisecond: `2m 30s`.
pub fn duration(d: Duration) -> String {
    let rounded = Duration::from_millis(d.as_millis().min(u128::from(u64::MAX)) as u64);
    if rounded.is_zero() {
        return "0s".to_string();
    }
    humantime::format_duration(rounded).to_string()
}

/// The payload as JSON when it is JSON, else as text or hex.
pub fn payload(bytes: &[u8]) -> (&'static str, Value) {
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        return ("payload", value);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => ("payload_text", Value::String(text.to_string())),
        Err(_) => (
            "payload_hex",
            Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        ),
    }
}

/// One attempt, for `--json`.
fn attempt_json(attempt: &taskq::Attempt) -> Value {
    json!({
        "number": attempt.number,
        "started_at": attempt.started_at.map(time),
        "ended_at": time(attempt.ended_at),
        "outcome": attempt.outcome.as_str(),
        "error": attempt.error,
        "worker": attempt.worker,
    })
}

/// Everything about a task, for `--json`.
pub fn task_json(task: &Task) -> Value {
    let (key, payload) = payload(&task.payload);
    let mut value = json!({
        "id": task.id.0,
        "action": task.action,
        "state": task.state.as_str(),
        "tries": task.tries,
        "max_tries": task.max_tries,
        "timeout_ms": task.timeout.as_millis() as u64,
        "not_before": time(task.not_before),
        "expires": task.expires.map(time),
        "parent": task.parent.map(|p| p.0),
        "last_error": task.last_error,
        "created_at": time(task.created_at),
        "finished_at": task.finished_at.map(time),
        "priority": task.priority,
        "unique_key": task.unique_key,
        "unique_states": task.unique_states,
        "unique_window": task.unique_window.map(time),
        "concurrency_key": task.concurrency_key,
        "cancel_requested": task.cancel_requested.map(time),
        "started_at": task.started_at.map(time),
        "worker": task.worker,
        "attempts": task.attempts.iter().map(attempt_json).collect::<Vec<_>>(),
    });
    value[key] = payload;
    // A result is JSON (taskq checks it when the handler returns it).
    value["result"] = task
        .result
        .as_deref()
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or(Value::Null);
    value
}

/// A task's links (see `taskq::Queue::links`) as JSON.
pub fn links_json(links: &[taskq::Link]) -> Value {
    links
        .iter()
        .map(|link| {
            json!({
                "id": link.id.0,
                "action": link.action,
                "state": link.state.map(taskq::State::as_str),
                "outcome": link.outcome.map(taskq::State::as_str),
            })
        })
        .collect()
}

/// A task's links as a table: the other task, its action and state now
/// ("gone" once deleted) and how it ended for the dependent.
pub fn links_table(links: &[taskq::Link], out: &Output) -> Result<(), Failure> {
    let rows: Vec<Vec<String>> = links
        .iter()
        .map(|link| {
            vec![
                link.id.to_string(),
                link.action.clone().unwrap_or_else(|| "-".into()),
                link.state.map_or_else(|| "gone".into(), |s| s.to_string()),
                link.outcome.map_or_else(|| "-".into(), |s| s.to_string()),
            ]
        })
        .collect();
    out.table(&["ID", "ACTION", "STATE", "OUTCOME"], &rows, "  none")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_shown_as_json_text_or_hex() {
        assert_eq!(payload(b"{\"a\":1}"), ("payload", json!({"a": 1})));
        assert_eq!(
            payload(b"plain words"),
            ("payload_text", json!("plain words"))
        );
        assert_eq!(payload(&[0xff, 0x00]), ("payload_hex", json!("ff00")));
    }

    #[test]
    fn counts_and_rates_read_like_words() {
        assert_eq!(count(1u64, "task", "tasks"), "1 task");
        assert_eq!(count(0u64, "task", "tasks"), "0 tasks");
        assert_eq!(count(2u32, "batch", "batches"), "2 batches");
        assert_eq!(thousands(42_438), "42,438");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(0), "0");
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(duration(Duration::from_secs(150)), "2m 30s");
        assert_eq!(duration(Duration::from_micros(10)), "0s");
        assert_eq!(time(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
