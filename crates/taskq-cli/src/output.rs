//! Printing results: aligned tables and human times for people, JSON for
//! scripts.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use taskq::Task;

/// Where and how results are printed.
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints a JSON value, one line.
    pub fn json(&self, value: &Value) {
        println!("{value}");
    }

    /// Prints rows under a header, each column as wide as its widest cell.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            println!("{}", padded.join("  ").trim_end());
        };
        line(header.to_vec());
        for row in rows {
            line(row.iter().map(String::as_str).collect());
        }
    }
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
    });
    value[key] = payload;
    value
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
    fn durations_read_like_people_write_them() {
        assert_eq!(duration(Duration::from_secs(150)), "2m 30s");
        assert_eq!(duration(Duration::from_micros(10)), "0s");
        assert_eq!(time(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
