//! Where a backend reads the time: the system clock, or a manual clock
//! that tests move forward to expire leases and reach not-before times
//! without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::micros;

/// The time source of the SQLite backend ([`SqliteConfig::clock`]).
/// PostgreSQL always uses the database server's clock.
///
/// A manual clock changes what the queue sees (not-before times, lease
/// ends, backoffs), not how long anything waits: the worker runtime and
/// [`Queue::claim_wait`] still poll and time heartbeats by the system
/// clock, so a manual clock is meant for the queue's own operations in
/// tests.
///
/// [`SqliteConfig::clock`]: crate::sqlite::SqliteConfig::clock
/// [`Queue::claim_wait`]: crate::Queue::claim_wait
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock (the default).
    #[default]
    System,
    /// A clock that moves only when told to.
    Manual(ManualClock),
}

impl Clock {
    /// The current time of this clock.
    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Manual(clock) => clock.now(),
        }
    }
}

/// A clock that stands still until [`advance`](Self::advance) or
/// [`set`](Self::set) moves it. Clones share one time.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use taskq::ManualClock;
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
/// let later = clock.clone();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(later.now(), UNIX_EPOCH + Duration::from_secs(1_800_000_090));
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            micros: Arc::new(AtomicI64::new(micros::from_time(start))),
        }
    }

    /// The time it shows, to the microsecond.
    pub fn now(&self) -> SystemTime {
        micros::to_time(self.micros.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `by` (to the microsecond).
    pub fn advance(&self, by: Duration) {
        let by = micros::from_duration(by);
        let _ = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(by))
            });
    }

    /// Sets the clock to `at`, forward or back.
    pub fn set(&self, at: SystemTime) {
        self.micros.store(micros::from_time(at), Ordering::SeqCst);
    }
}

/// Clones of one manual clock are equal; separate clocks are not, even
/// when they show the same time.
impl PartialEq for ManualClock {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.micros, &other.micros)
    }
}

impl Eq for ManualClock {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), start + Duration::from_millis(1500));
        let before_epoch = UNIX_EPOCH - Duration::from_secs(5);
        clock.set(before_epoch);
        assert_eq!(Clock::Manual(clock.clone()).now(), before_epoch);
        assert_ne!(clock, ManualClock::new(before_epoch));
        assert_eq!(Clock::Manual(clock.clone()), Clock::Manual(clock));
    }
}
