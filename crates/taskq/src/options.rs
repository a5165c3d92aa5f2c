//! Per-call options (`*Options`) and long-lived settings (`*Config`).

use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::names::{validate_action, TaskId};
use crate::state::State;
use crate::unique::Unique;
use crate::workflow::Dependency;

/// The value of `max_tries` that means "retry forever".
pub const FOREVER: i32 = -1;

/// How many tries a task gets unless told otherwise.
pub const DEFAULT_MAX_TRIES: i32 = 10;

/// How long a lease lasts unless told otherwise: 2 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest lease or delay taskq accepts (10 years); longer ones are
/// almost always a unit mistake.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// When a task may first run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotBefore {
    /// This long after the enqueue, by the database's clock.
    Delay(Duration),
    /// At this time.
    At(SystemTime),
}

/// How a task runs. Every field has a default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnqueueOptions {
    /// Tries before the task fails for good; [`FOREVER`] (-1) retries
    /// without limit. Default: [`DEFAULT_MAX_TRIES`] (10).
    pub max_tries: i32,
    /// Length of the lease each try takes; a worker that neither finishes
    /// nor extends within it loses the task to the next claim. Default:
    /// [`DEFAULT_TIMEOUT`] (2 minutes).
    pub timeout: Duration,
    /// When the task may first run. Default: `None`, at once.
    pub not_before: Option<NotBefore>,
    /// The task that spawned this one. Default: `None`. Follow-up tasks of
    /// a completion get it set automatically.
    pub parent: Option<TaskId>,
    /// Lower runs first. Default: 0.
    pub priority: i16,
    /// A unique key, and the states and period it holds among. Default:
    /// `None`.
    pub unique: Option<Unique>,
    /// The key the action's per-key concurrency limit counts it under
    /// (see [`Limits::per_key`](crate::Limits::per_key)). Default: `None`,
    /// held back by no per-key limit.
    pub concurrency_key: Option<String>,
    /// The tasks it waits for (see [`Dependency`]). Default: none.
    pub depends_on: Vec<Dependency>,
    /// Whether it runs when a dependency fails for good or is cancelled,
    /// instead of being cancelled with it. Default: false.
    pub run_if_dependencies_fail: bool,
}

impl Default for EnqueueOptions {
    fn default() -> Self {
        EnqueueOptions {
            max_tries: DEFAULT_MAX_TRIES,
            timeout: DEFAULT_TIMEOUT,
            not_before: None,
            parent: None,
            priority: 0,
            unique: None,
            concurrency_key: None,
            depends_on: Vec::new(),
            run_if_dependencies_fail: false,
        }
    }
}

impl EnqueueOptions {
    /// Checks every field, returning [`Error::InvalidInput`] naming the
    /// first one that is out of range.
    pub fn validate(&self) -> Result<()> {
        if self.max_tries < FOREVER || self.max_tries == 0 {
            return Err(Error::invalid(
                "max_tries",
                format!(
                    "{} is not allowed; use a positive number or -1 for forever",
                    self.max_tries
                ),
            ));
        }
        validate_duration("timeout", self.timeout, false)?;
        match self.not_before {
            Some(NotBefore::Delay(delay)) => validate_duration("delay", delay, true)?,
            Some(NotBefore::At(at)) => {
                let far = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
                if at > far {
                    return Err(Error::invalid("run_at", "the time is after the year 9999"));
                }
            }
            None => {}
        }
        if let Some(parent) = self.parent {
            if parent.0 <= 0 {
                return Err(Error::invalid(
                    "parent",
                    format!("{parent} is not a task id"),
                ));
            }
        }
        if let Some(unique) = &self.unique {
            unique.validate()?;
        }
        if let Some(key) = &self.concurrency_key {
            crate::limits::validate_concurrency_key(key)?;
        }
        Ok(())
    }
}

/// Checks that a duration is positive (or zero where allowed), a whole
/// number of microseconds or more (the unit taskq stores, so that nothing
/// rounds to zero on the way to the database), and at most
/// [`MAX_DURATION`].
pub(crate) fn validate_duration(field: &'static str, value: Duration, zero_ok: bool) -> Result<()> {
    if value.is_zero() && !zero_ok {
        return Err(Error::invalid(field, "must be longer than zero"));
    }
    if !value.is_zero() && value < Duration::from_micros(1) {
        return Err(Error::invalid(
            field,
            format!("{value:?} is shorter than a microsecond, the smallest time taskq stores"),
        ));
    }
    if value > MAX_DURATION {
        return Err(Error::invalid(
            field,
            format!("{value:?} is longer than the limit of 10 years"),
        ));
    }
    Ok(())
}

/// How [`Queue::connect_with`](crate::Queue::connect_with) opens a
/// database.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectOptions {
    /// Create what is missing (the SQLite file, the PostgreSQL schema and
    /// taskq's tables) and upgrade an older schema. Default: `true`. When
    /// `false`, nothing is created or changed: a SQLite file that does not
    /// exist is a [`DatabaseErrorKind::CannotOpen`](crate::DatabaseErrorKind::CannotOpen)
    /// error, and operations on a database without taskq's tables (or with
    /// older ones) fail with [`Error::SchemaTooOld`].
    pub create: bool,
    /// The queue's settings. Default: [`QueueConfig::default`].
    pub config: QueueConfig,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            create: true,
            config: QueueConfig::default(),
        }
    }
}

/// The order in which [`Queue::list`](crate::Queue::list) returns tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Smallest id first.
    #[default]
    OldestFirst,
    /// Largest id first.
    NewestFirst,
}

/// The most tasks one [`Queue::list`](crate::Queue::list) call returns.
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// Which tasks [`Queue::list`](crate::Queue::list) returns, one page at a
/// time. Page on by passing the last id of a page as `after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListOptions {
    /// Only this action. Default: all actions.
    pub action: Option<String>,
    /// Only this state. Default: all states.
    pub state: Option<State>,
    /// Sort order by id. Default: oldest first.
    pub order: Order,
    /// Start after this id (in the chosen order). Default: from the start.
    pub after: Option<TaskId>,
    /// Page size, 1 to [`MAX_LIST_LIMIT`]. Default: 100.
    pub limit: u32,
    /// Only tasks whose last error contains this text, ignoring the case
    /// of ASCII letters. Default: any task, with an error or without.
    /// The tasks of the other filters are read and tested one by one, so
    /// narrow it with a state (usually failed) on a large queue.
    pub error_contains: Option<String>,
    /// Only the follow-ups of this task (those that name it as their
    /// parent), read through an index of parents. Default: any task.
    pub parent: Option<TaskId>,
}

/// The longest text [`ListOptions::error_contains`] accepts.
pub const MAX_ERROR_FILTER_LEN: usize = 1_000;

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            action: None,
            state: None,
            order: Order::OldestFirst,
            after: None,
            limit: 100,
            error_contains: None,
            parent: None,
        }
    }
}

impl ListOptions {
    /// Checks the filter and page size.
    pub fn validate(&self) -> Result<()> {
        if let Some(action) = &self.action {
            validate_action(action)?;
        }
        if self.limit == 0 || self.limit > MAX_LIST_LIMIT {
            return Err(Error::invalid(
                "limit",
                format!("{} is outside 1..={MAX_LIST_LIMIT}", self.limit),
            ));
        }
        if let Some(text) = &self.error_contains {
            if text.is_empty() || text.len() > MAX_ERROR_FILTER_LEN {
                return Err(Error::invalid(
                    "error_contains",
                    format!("the text must be 1 to {MAX_ERROR_FILTER_LEN} bytes long"),
                ));
            }
        }
        if let Some(parent) = self.parent {
            if parent.0 <= 0 {
                return Err(Error::invalid(
                    "parent",
                    format!("{parent} is not a task id"),
                ));
            }
        }
        Ok(())
    }
}

/// How long a failed try waits before the next: exponential, capped, with
/// random jitter so that many failures at once do not retry in lockstep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The wait after the first failed try; each later failure doubles it.
    /// Default: 1 second.
    pub initial: Duration,
    /// The longest wait. Default: 1 hour.
    pub max: Duration,
    /// The share of each wait that is random, 0.0 to 1.0: a wait `w`
    /// becomes a value between `w * (1 - jitter)` and `w`. Default: 0.25.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(3600),
            jitter: 0.25,
        }
    }
}

impl Backoff {
    /// The wait after the try numbered `tries` (1 for the first) failed.
    pub fn delay(&self, tries: i32) -> Duration {
        let doublings = tries.saturating_sub(1).clamp(0, 62) as u32;
        let full = self
            .initial
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        full.mul_f64(1.0 - jitter * fastrand::f64())
    }

    fn validate(&self) -> Result<()> {
        validate_duration("backoff.max", self.max, true)?;
        validate_duration("backoff.initial", self.initial, true)?;
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(Error::invalid(
                "backoff.jitter",
                "must be between 0.0 and 1.0",
            ));
        }
        Ok(())
    }
}

/// Long-lived settings of a [`Queue`](crate::Queue), the same for every
/// backend.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueConfig {
    /// How failed tries are spaced out. Default: see [`Backoff`].
    pub backoff: Backoff,
    /// Keep completed tasks as [`State::Succeeded`] instead of deleting
    /// them, for auditing; running workers remove them after their
    /// [`Retention`](crate::worker::Retention) (7 days by default), and
    /// [`Queue::purge`](crate::Queue::purge) removes them by hand.
    /// Default: `false`.
    pub retain_completed: bool,
    /// How often an idle [`Queue::claim_wait`](crate::Queue::claim_wait)
    /// looks for ready tasks when no wake-up arrives: the most a task
    /// coming due after a delay, or enqueued by another process when the
    /// wake-up was lost, waits for an idle worker. Default: 1 second.
    pub poll_interval: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            backoff: Backoff::default(),
            retain_completed: false,
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl QueueConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        validate_duration("poll_interval", self.poll_interval, false)?;
        self.backoff.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let backoff = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        assert_eq!(backoff.delay(1), Duration::from_secs(1));
        assert_eq!(backoff.delay(2), Duration::from_secs(2));
        assert_eq!(backoff.delay(5), Duration::from_secs(16));
        assert_eq!(backoff.delay(40), Duration::from_secs(3600));
        assert_eq!(backoff.delay(i32::MAX), Duration::from_secs(3600));
        assert_eq!(backoff.delay(0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_its_share() {
        let backoff = Backoff::default();
        for _ in 0..1000 {
            let d = backoff.delay(3);
            assert!(
                d <= Duration::from_secs(4) && d >= Duration::from_secs(3),
                "{d:?}"
            );
        }
    }

    #[test]
    fn options_are_validated() {
        assert!(EnqueueOptions::default().validate().is_ok());
        let bad = [
            EnqueueOptions {
                max_tries: -2,
                ..Default::default()
            },
            EnqueueOptions {
                max_tries: 0,
                ..Default::default()
            },
            EnqueueOptions {
                timeout: Duration::ZERO,
                ..Default::default()
            },
            EnqueueOptions {
                timeout: MAX_DURATION * 2,
                ..Default::default()
            },
            EnqueueOptions {
                parent: Some(TaskId(0)),
                ..Default::default()
            },
            EnqueueOptions {
                timeout: Duration::from_nanos(1),
                ..Default::default()
            },
            EnqueueOptions {
                not_before: Some(NotBefore::Delay(Duration::from_nanos(999))),
                ..Default::default()
            },
        ];
        for options in bad {
            assert!(
                matches!(options.validate(), Err(Error::InvalidInput { .. })),
                "{options:?}"
            );
        }
        let forever = EnqueueOptions {
            max_tries: FOREVER,
            ..Default::default()
        };
        assert!(forever.validate().is_ok());
    }
}
