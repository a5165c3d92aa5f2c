//! The throughput history from the queue: what workers record, and what
//! the dashboard reads.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::error::Result;
use crate::names::validate_action;
use crate::queue::Queue;
use crate::throughput::{minute_at, minute_of, Throughput, THROUGHPUT_KEPT};

impl Queue {
    /// The throughput history of the last `last` (at most
    /// [`THROUGHPUT_KEPT`], two days): per minute and action, how many
    /// tries workers ended completed, retried and failed, oldest minute
    /// first. Workers of this crate record what they run every few
    /// seconds, on every machine; tasks finished by other means (a
    /// [`Lease`](crate::Lease) used by hand) count only if their program
    /// calls [`record_throughput`](Queue::record_throughput).
    pub async fn throughput(&self, last: Duration) -> Result<Vec<Throughput>> {
        let since = SystemTime::now()
            .checked_sub(last.min(THROUGHPUT_KEPT))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.backend().throughput_since(since).await
    }

    /// Adds counts to the throughput history (rows of one minute and
    /// action are added up; empty rows are dropped), and removes the
    /// history older than [`THROUGHPUT_KEPT`]. Workers call it
    /// themselves.
    pub async fn record_throughput(&self, rows: Vec<Throughput>) -> Result<()> {
        let mut merged: BTreeMap<(i64, String), Throughput> = BTreeMap::new();
        for row in rows.into_iter().filter(|row| !row.is_empty()) {
            validate_action(&row.action)?;
            let minute = minute_of(row.minute);
            let entry = merged
                .entry((minute, row.action.clone()))
                .or_insert_with(|| Throughput {
                    minute: minute_at(minute),
                    completed: 0,
                    retried: 0,
                    failed: 0,
                    ..row.clone()
                });
            entry.completed += row.completed;
            entry.retried += row.retried;
            entry.failed += row.failed;
        }
        if merged.is_empty() {
            return Ok(());
        }
        let rows: Vec<Throughput> = merged.into_values().collect();
        let keep_from = SystemTime::now()
            .checked_sub(THROUGHPUT_KEPT)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.backend().throughput_add(&rows, keep_from).await
    }
}
