//! The throughput history: how many tries the workers ended, per action
//! and minute.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the throughput history is kept: two days.
pub const THROUGHPUT_KEPT: Duration = Duration::from_secs(2 * 24 * 3600);

/// The tries of one action that ended in one minute, as the workers that
/// ran them counted them (see [`Queue::throughput`](crate::Queue::throughput)).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Throughput {
    /// The minute's start.
    #[serde(with = "unix_seconds")]
    pub minute: SystemTime,
    /// The action.
    pub action: String,
    /// Tasks completed.
    pub completed: u64,
    /// Tries that failed and were retried.
    pub retried: u64,
    /// Tasks that failed for good.
    pub failed: u64,
}

impl Throughput {
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.completed == 0 && self.retried == 0 && self.failed == 0
    }
}

/// The start of the minute `time` falls in, in Unix seconds.
pub(crate) fn minute_of(time: SystemTime) -> i64 {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    i64::try_from(seconds - seconds % 60).unwrap_or(i64::MAX)
}

/// A minute's start in Unix seconds as a time.
pub(crate) fn minute_at(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds.max(0).unsigned_abs())
}

/// Times as whole Unix seconds in JSON.
pub(crate) mod unix_seconds {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub(crate) fn serialize<S: serde::Serializer>(
        time: &SystemTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        serializer.serialize_u64(seconds)
    }

    /// The same for an optional time, `null` for none.
    pub(crate) fn serialize_option<S: serde::Serializer>(
        time: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => serialize(time, serializer),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_falls_in_the_minute_that_starts_at_or_before_it() {
        let at = UNIX_EPOCH + Duration::from_millis(125_999);
        assert_eq!(minute_of(at), 120);
        assert_eq!(
            minute_at(minute_of(at)),
            UNIX_EPOCH + Duration::from_secs(120)
        );
        assert_eq!(minute_of(UNIX_EPOCH), 0);
    }
}
