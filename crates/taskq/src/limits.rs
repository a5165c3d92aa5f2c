//! Limits on how many tasks of an action run at once and how fast they
//! start, across every worker on every machine: a concurrency limit, a
//! rate limit, and a concurrency limit per key. Stored in the database and
//! enforced by the claim's own transaction, so they hold however many
//! workers run, and change at run time.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::micros;
use crate::names::validate_name;
use crate::options::validate_duration;

/// The highest count a limit takes.
pub const MAX_LIMIT: u32 = 1_000_000;

/// The longest concurrency key, in bytes.
pub const MAX_CONCURRENCY_KEY_LEN: usize = 255;

/// The shortest rate period: a millisecond.
const MIN_RATE_PERIOD: Duration = Duration::from_millis(1);

/// The limits of one action (see [`Queue::set_limits`](crate::Queue::set_limits)).
/// Each is off when `None`; all three may be set together, and a claim
/// takes only what every one of them admits.
///
/// A running task holds its slot until it completes, fails, is released
/// or its lease expires: a worker that dies holding a slot gives it back
/// when its lease ends. Lowering a limit stops nothing that runs; it
/// holds back the next claims until the running tasks fall below it.
///
/// ```
/// use std::time::Duration;
/// use taskq::{Limits, Rate};
///
/// // At most 5 at once, 20 starts a second, and one at a time per customer.
/// let limits = Limits::new()
///     .concurrency(5)
///     .rate(Rate::new(20, Duration::from_secs(1)))
///     .per_key(1);
/// assert!(limits.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Limits {
    /// At most this many tasks of the action run at once.
    pub concurrency: Option<u32>,
    /// At most this many claims per period.
    pub rate: Option<Rate>,
    /// At most this many tasks with the same
    /// [concurrency key](crate::NewTask::concurrency_key) run at once;
    /// tasks without a key are not held back by it.
    pub per_key: Option<u32>,
}

impl Limits {
    /// No limits.
    pub fn new() -> Self {
        Limits::default()
    }

    /// Sets the concurrency limit.
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = Some(n);
        self
    }

    /// Sets the rate limit.
    pub fn rate(mut self, rate: Rate) -> Self {
        self.rate = Some(rate);
        self
    }

    /// Sets the concurrency limit per key.
    pub fn per_key(mut self, n: u32) -> Self {
        self.per_key = Some(n);
        self
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self.concurrency.is_none() && self.rate.is_none() && self.per_key.is_none()
    }

    /// Checks every limit, returning [`Error::InvalidInput`] naming the
    /// first one out of range: counts are 1 to [`MAX_LIMIT`], a rate's
    /// period a millisecond to 10 years.
    pub fn validate(&self) -> Result<()> {
        validate_count("concurrency", self.concurrency)?;
        validate_count("per_key", self.per_key)?;
        if let Some(rate) = self.rate {
            validate_count("rate", Some(rate.count))?;
            validate_duration("rate", rate.per, false)?;
            if rate.per < MIN_RATE_PERIOD {
                return Err(Error::invalid(
                    "rate",
                    format!("the period {:?} is shorter than a millisecond", rate.per),
                ));
            }
        }
        Ok(())
    }
}

fn validate_count(field: &'static str, value: Option<u32>) -> Result<()> {
    match value {
        Some(0) => Err(Error::invalid(field, "must be at least 1")),
        Some(n) if n > MAX_LIMIT => Err(Error::invalid(
            field,
            format!("{n} is over the highest limit, {MAX_LIMIT}"),
        )),
        _ => Ok(()),
    }
}

/// A rate: at most `count` claims per `per`, across every worker.
///
/// Kept as a token bucket of `count` tokens that refills evenly over `per`:
/// a quiet action may start a burst of `count` at once, and over any time
/// `t` at most `count + count * t / per` start. The time is the
/// database's clock (the PostgreSQL server's, or the clock of the machine
/// that writes the SQLite file), so a step forward of that clock refills
/// the bucket by as much as the step would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rate {
    /// How many claims.
    pub count: u32,
    /// In how long.
    #[serde(serialize_with = "serialize_seconds")]
    pub per: Duration,
}

impl Rate {
    /// `count` claims per `per`.
    pub fn new(count: u32, per: Duration) -> Self {
        Rate { count, per }
    }

    /// `count` claims a second.
    pub fn per_second(count: u32) -> Self {
        Rate::new(count, Duration::from_secs(1))
    }

    /// The period in microseconds.
    pub(crate) fn per_micros(&self) -> i64 {
        micros::from_duration(self.per)
    }
}

fn serialize_seconds<S: serde::Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(value.as_secs_f64())
}

/// An action's limits as stored, and how much of them is in use now
/// (see [`Queue::limits`](crate::Queue::limits)).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LimitInfo {
    /// The action.
    pub action: String,
    /// Its limits.
    pub limits: Limits,
    /// Its tasks running under a lease that has not expired: the slots
    /// taken.
    pub running: u64,
    /// The claims its rate admits now (whole tokens in the bucket); `None`
    /// without a rate limit.
    pub tokens: Option<u64>,
    /// The concurrency keys with as many tasks running as the per-key
    /// limit admits; 0 without one.
    pub busy_keys: u64,
    /// When the limits were last set. In JSON, Unix seconds.
    #[serde(serialize_with = "crate::throughput::unix_seconds::serialize")]
    pub updated_at: SystemTime,
}

/// What a claim of a limited action learned, beside the tasks it took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// The action has limits: its running tasks free a slot when they end.
    pub limited: bool,
    /// The rate held tasks back: the next claim is admitted after this
    /// long.
    pub retry_in: Option<Duration>,
}

/// The tokens in a bucket of `rate` that held `tokens` `elapsed_us` ago,
/// at most `rate.count`. (PostgreSQL works them out in SQL.)
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn refill(rate: Rate, tokens: f64, elapsed_us: i64) -> f64 {
    let per = rate.per_micros().max(1) as f64;
    let count = f64::from(rate.count);
    (tokens + elapsed_us.max(0) as f64 * count / per).min(count)
}

/// How long until a bucket of `rate` that holds `tokens` holds a whole one.
pub(crate) fn next_token_in(rate: Rate, tokens: f64) -> Duration {
    let missing = (1.0 - tokens).max(0.0);
    let per = rate.per.as_secs_f64() / f64::from(rate.count.max(1));
    // A microsecond more, so the claim after the wait finds the token.
    Duration::from_secs_f64(missing * per) + Duration::from_micros(1)
}

/// Checks a concurrency key: 1 to [`MAX_CONCURRENCY_KEY_LEN`] bytes, no
/// control characters.
pub(crate) fn validate_concurrency_key(key: &str) -> Result<()> {
    validate_name(
        "concurrency_key",
        "concurrency key",
        key,
        MAX_CONCURRENCY_KEY_LEN,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert!(Limits::new().validate().is_ok());
        assert!(Limits::new().is_empty());
        let field = |limits: Limits| match limits.validate() {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(Limits::new().concurrency(0)), "concurrency");
        assert_eq!(field(Limits::new().per_key(MAX_LIMIT + 1)), "per_key");
        assert_eq!(field(Limits::new().rate(Rate::per_second(0))), "rate");
        let fast = Rate::new(1, Duration::from_micros(10));
        assert_eq!(field(Limits::new().rate(fast)), "rate");
        assert!(Limits::new()
            .rate(Rate::per_second(MAX_LIMIT))
            .validate()
            .is_ok());
    }

    #[test]
    fn a_bucket_refills_evenly_up_to_its_size() {
        let rate = Rate::per_second(20);
        assert_eq!(refill(rate, 0.0, 50_000), 1.0);
        assert_eq!(refill(rate, 3.0, 10_000_000), 20.0);
        assert_eq!(refill(rate, 5.0, -7), 5.0);
        let wait = next_token_in(rate, 0.5);
        assert!(wait >= Duration::from_millis(25) && wait < Duration::from_millis(26));
        assert_eq!(next_token_in(rate, 1.0), Duration::from_micros(1));
    }
}
