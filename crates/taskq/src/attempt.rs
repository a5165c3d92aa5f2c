//! The record each try of a task leaves, and the worker that ran it.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::micros;

/// How many attempt records a task keeps: the newest ones.
pub const KEPT_ATTEMPTS: usize = 20;

/// Who claimed a task: the machine, the process and, when its worker was
/// given one, a name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkerId {
    /// The host name of the machine.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The worker's name ([`WorkerConfig::name`](crate::worker::WorkerConfig::name)),
    /// if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl WorkerId {
    /// This process, with an optional worker name.
    pub fn this_process(name: Option<String>) -> Self {
        WorkerId {
            host: host_name(),
            pid: std::process::id(),
            name,
        }
    }

    /// As the database stores it: a small JSON object.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

impl std::fmt::Display for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} ({} pid {})", self.host, self.pid),
            None => write!(f, "{} pid {}", self.host, self.pid),
        }
    }
}

/// The machine's host name, or `"unknown"`.
fn host_name() -> String {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok());
    from_kernel
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// How one try ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// Completed (recorded when the task is kept as succeeded).
    Succeeded,
    /// Failed with tries left: the task runs again after the backoff.
    Retried,
    /// Failed for good.
    Failed,
    /// Ended cancelled.
    Cancelled,
    /// Its lease expired before it finished.
    Expired,
    /// Given back to run later, without counting the try.
    Snoozed,
    /// Given back at once (a shutdown), without counting the try.
    Released,
}

impl AttemptOutcome {
    /// The lower-case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Retried => "retried",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::Expired => "expired",
            AttemptOutcome::Snoozed => "snoozed",
            AttemptOutcome::Released => "released",
        }
    }
}

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One try of a task, as recorded when it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The try's number, from 1.
    pub number: i32,
    /// When it was claimed.
    pub started_at: Option<SystemTime>,
    /// When it ended.
    pub ended_at: SystemTime,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Its error, if it failed or was cancelled.
    pub error: Option<String>,
    /// Who ran it.
    pub worker: Option<WorkerId>,
}

/// An attempt as the backends store it, one element of a task's JSON
/// array of attempts; times in microseconds since the Unix epoch.
#[derive(Deserialize)]
struct Stored {
    n: i32,
    start: Option<i64>,
    end: i64,
    outcome: AttemptOutcome,
    error: Option<String>,
    worker: Option<WorkerId>,
}

/// The attempts of a stored JSON array, oldest first; `None` or text that
/// is not such an array gives none.
pub(crate) fn attempts_from_json(text: Option<&str>) -> Vec<Attempt> {
    let Some(text) = text else {
        return Vec::new();
    };
    let stored: Vec<Stored> = serde_json::from_str(text).unwrap_or_default();
    stored
        .into_iter()
        .map(|a| Attempt {
            number: a.n,
            started_at: a.start.map(micros::to_time),
            ended_at: micros::to_time(a.end),
            outcome: a.outcome,
            error: a.error,
            worker: a.worker,
        })
        .collect()
}

/// The worker of a stored JSON object.
pub(crate) fn worker_from_json(text: Option<&str>) -> Option<WorkerId> {
    text.and_then(|text| serde_json::from_str(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_attempts_read_back() {
        let worker = WorkerId {
            host: "h".into(),
            pid: 7,
            name: Some("w".into()),
        };
        let text = format!(
            r#"[{{"n":1,"start":1,"end":2,"outcome":"retried","error":"boom","worker":{}}},
                {{"n":2,"start":null,"end":3,"outcome":"expired","error":null,"worker":null}}]"#,
            worker.to_json()
        );
        let attempts = attempts_from_json(Some(&text));
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0].worker.as_ref(), Some(&worker));
        assert_eq!(attempts[1].outcome, AttemptOutcome::Expired);
        assert!(attempts_from_json(Some("not json")).is_empty());
        assert_eq!(worker.to_string(), "w (h pid 7)");
    }
}
