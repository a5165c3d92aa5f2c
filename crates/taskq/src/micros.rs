//! Times and durations as whole microseconds, the unit taskq stores and
//! sends to the databases. Every conversion goes through here, so every
//! backend rounds and saturates the same way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, negative before it; saturates at
/// the ends of an `i64` (about 292,000 years either way).
pub(crate) fn from_time(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// The time `micros` microseconds after the Unix epoch (before it when
/// negative).
pub(crate) fn to_time(micros: i64) -> SystemTime {
    if micros >= 0 {
        UNIX_EPOCH + Duration::from_micros(micros.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

/// The current system time in microseconds since the epoch.
#[cfg(feature = "sqlite")]
pub(crate) fn now() -> i64 {
    from_time(SystemTime::now())
}

/// A duration in microseconds, saturating at `i64::MAX` (validated
/// durations are at most ten years, far below it).
pub(crate) fn from_duration(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// A stored duration; a negative one (which the schemas' checks forbid)
/// reads as zero.
pub(crate) fn to_duration(micros: i64) -> Duration {
    Duration::from_micros(micros.max(0).unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_on_both_sides_of_the_epoch() {
        for micros in [0, 1, -1, 1_700_000_000_123_456, -86_400_000_001] {
            assert_eq!(from_time(to_time(micros)), micros);
        }
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(from_time(before), -5_000_000);
    }

    #[test]
    fn the_ends_saturate() {
        assert_eq!(from_duration(Duration::MAX), i64::MAX);
        assert_eq!(to_duration(-5), Duration::ZERO);
        assert_eq!(to_duration(1_500), Duration::from_micros(1_500));
        assert_eq!(from_time(to_time(i64::MIN)), i64::MIN);
        assert_eq!(from_time(to_time(i64::MAX)), i64::MAX);
    }
}
