//! One module per command, each with its arguments and a `run` function
//! on the library's public API. Argument parsers they share live here.

pub mod bulk;
pub mod cancel;
pub mod completions;
pub mod dashboard;
pub mod delete;
pub mod enqueue;
pub mod graph;
pub mod len;
pub mod limit;
pub mod list;
pub mod man;
pub mod migrate;
pub mod pause;
pub mod purge;
pub mod requeue_expired;
pub mod resume;
pub mod retry;
pub mod schedule;
pub mod show;
pub mod stats;
pub mod work;

use std::time::{Duration, SystemTime};

use taskq::{State, TaskId};

/// `7d`, `2m`, `1h 30m`, `250ms`. A negative one (`-5s`) reaches here as
/// a value, to be refused as one.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim_start().starts_with('-') {
        return Err(format!(
            "{text:?} is negative; durations are zero or more (write it like 30s, 2m, 1h 30m or 7d)"
        ));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{e} (write it like 30s, 2m, 1h 30m or 7d)"))
}

/// An RFC 3339 time such as `2026-11-27T10:00:00Z`.
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{e} (write it like 2026-11-27T10:00:00Z)"))
}

/// `waiting`, `queued`, `running`, `failed`, `succeeded` or `cancelled`.
pub fn parse_state(text: &str) -> Result<State, String> {
    text.parse().map_err(|e: taskq::Error| e.to_string())
}

/// A task id: a positive integer.
pub fn parse_id(text: &str) -> Result<TaskId, String> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(TaskId(id)),
        _ => Err(format!(
            "{text:?} is not a task id (a positive whole number)"
        )),
    }
}
