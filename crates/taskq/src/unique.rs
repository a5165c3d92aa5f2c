//! Unique keys: at most one task per key and action among the tasks in
//! chosen states, enforced by a unique index of the database.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::names::{validate_name, TaskId};
use crate::options::validate_duration;
use crate::state::State;

/// The longest unique key, in bytes.
pub const MAX_UNIQUE_KEY_LEN: usize = 255;

/// The states a unique key always counts: a task that may still run
/// (waiting for its dependencies included).
const LIVE_STATES: [State; 3] = [State::Waiting, State::Queued, State::Running];

/// A task's unique key: while a task of the same action holds the key in
/// one of the counted states, enqueueing another returns the existing one
/// (see [`Enqueued::duplicate`]) instead of adding a task.
///
/// Waiting, queued and running tasks always count. [`including`](Unique::including)
/// adds finished states (a failed task waiting for inspection blocks new
/// ones, say); [`per`](Unique::per) makes the key hold for one period
/// window, aligned to the Unix epoch, in any state: "at most one report
/// per customer per hour", even after the first one finished.
///
/// ```
/// use std::time::Duration;
/// use taskq::{NewTask, State, Unique};
///
/// // At most one sync per customer queued or running at a time:
/// let task = NewTask::json("sync", &42)?.unique_key("customer:42");
/// // At most one digest per user per day, and none while a failed one waits:
/// let digest = NewTask::json("digest", &7)?
///     .unique(Unique::key("user:7").including(State::Failed).per(Duration::from_secs(86_400)));
/// # Ok::<(), taskq::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unique {
    /// The key, 1 to [`MAX_UNIQUE_KEY_LEN`] bytes without control
    /// characters, unique per action.
    pub key: String,
    /// Finished states (failed, succeeded, cancelled) that also count,
    /// besides queued and running. Default: none. A succeeded task counts
    /// only while it is kept: a key that counts succeeded tasks keeps its
    /// completed tasks as succeeded until they are purged.
    pub finished: Vec<State>,
    /// The key also holds among every task of the same period window, in
    /// any state: windows are this long, counted from the Unix epoch (by
    /// the database's clock). Its completed tasks are kept as succeeded so
    /// that the window sees them; purge them once the window is over.
    /// Default: none.
    pub period: Option<Duration>,
}

impl Unique {
    /// A key counted among queued and running tasks.
    pub fn key(key: impl Into<String>) -> Self {
        Unique {
            key: key.into(),
            finished: Vec::new(),
            period: None,
        }
    }

    /// Also counts the tasks in the finished `state`.
    pub fn including(mut self, state: State) -> Self {
        if !self.finished.contains(&state) {
            self.finished.push(state);
        }
        self
    }

    /// Also holds among all tasks of one window of `period`.
    pub fn per(mut self, period: Duration) -> Self {
        self.period = Some(period);
        self
    }

    /// Checks the key, states and period.
    pub fn validate(&self) -> Result<()> {
        validate_key(&self.key)?;
        if let Some(state) = self.finished.iter().find(|s| !s.is_finished()) {
            return Err(Error::invalid(
                "unique.finished",
                format!("{state} is not a finished state (queued and running always count)"),
            ));
        }
        if let Some(period) = self.period {
            validate_duration("unique.period", period, false)?;
        }
        Ok(())
    }

    /// The counted states as the database stores them: one bit each.
    pub(crate) fn states_bits(&self) -> i16 {
        LIVE_STATES
            .iter()
            .chain(&self.finished)
            .fold(0, |bits, state| bits | state.bit())
    }

    /// The period in microseconds.
    pub(crate) fn period_micros(&self) -> Option<i64> {
        self.period.map(crate::micros::from_duration)
    }
}

/// Checks a unique key: 1 to [`MAX_UNIQUE_KEY_LEN`] bytes, no control
/// characters.
pub(crate) fn validate_key(key: &str) -> Result<()> {
    validate_name("unique_key", "unique key", key, MAX_UNIQUE_KEY_LEN)
}

/// The states a stored set of bits counts.
pub(crate) fn states_of_bits(bits: i16) -> Vec<State> {
    State::ALL
        .into_iter()
        .filter(|state| bits & state.bit() != 0)
        .collect()
}

/// The start of the period window that `now` falls in, in microseconds
/// (PostgreSQL computes it in SQL, by its own clock).
#[cfg(feature = "sqlite")]
pub(crate) fn window_start(now_micros: i64, period_micros: i64) -> i64 {
    now_micros - now_micros.rem_euclid(period_micros.max(1))
}

/// What an enqueue did with one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Enqueued {
    /// The new task's id or, for a duplicate, the id of the task that
    /// already holds its unique key.
    pub id: TaskId,
    /// The task was not added: another one holds its unique key.
    pub duplicate: bool,
}

impl Enqueued {
    /// A task that was added.
    pub(crate) fn new(id: TaskId) -> Self {
        Enqueued {
            id,
            duplicate: false,
        }
    }

    /// A duplicate of the task `existing`.
    pub(crate) fn duplicate_of(existing: TaskId) -> Self {
        Enqueued {
            id: existing,
            duplicate: true,
        }
    }
}

/// What [`Queue::retry`](crate::Queue::retry_with) does with a task's
/// unique key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RetryKey {
    /// Keep it: the retry fails with [`Error::Duplicate`] if another task
    /// holds it now.
    #[default]
    Keep,
    /// Give the task this key instead.
    Replace(String),
    /// Take the key away.
    Clear,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_and_states_finished() {
        assert!(Unique::key("a").validate().is_ok());
        assert!(Unique::key("").validate().is_err());
        assert!(Unique::key("a".repeat(MAX_UNIQUE_KEY_LEN + 1))
            .validate()
            .is_err());
        assert!(Unique::key("a\0b").validate().is_err());
        assert!(Unique::key("a")
            .including(State::Queued)
            .validate()
            .is_err());
        assert!(Unique::key("a").per(Duration::ZERO).validate().is_err());
        let all = Unique::key("a")
            .including(State::Failed)
            .including(State::Cancelled)
            .including(State::Failed);
        assert_eq!(all.finished.len(), 2);
        assert_eq!(
            states_of_bits(all.states_bits()),
            [
                State::Waiting,
                State::Queued,
                State::Running,
                State::Failed,
                State::Cancelled
            ]
        );
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn windows_start_at_multiples_of_the_period() {
        assert_eq!(window_start(3_700, 3_600), 3_600);
        assert_eq!(window_start(3_600, 3_600), 3_600);
        assert_eq!(window_start(-1, 3_600), -3_600);
    }
}
