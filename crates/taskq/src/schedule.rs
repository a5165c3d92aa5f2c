//! Periodic tasks: a schedule enqueues a task of its action at each tick
//! of a cron expression in a time zone, or of a fixed interval. Schedules
//! are rows of the database; any running worker enqueues the ticks that
//! are due, each exactly once across every worker and machine, by moving
//! the schedule's next tick forward in the transaction that inserts the
//! tick's task.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::micros;
use crate::names::{validate_action, validate_name, TaskId};
use crate::options::{validate_duration, EnqueueOptions, NotBefore};
use crate::state::State;
use crate::task::NewTask;
use crate::unique::Unique;

/// The longest schedule name, in bytes.
pub const MAX_SCHEDULE_NAME_LEN: usize = 255;

/// The most ticks one look at a schedule walks through; a schedule
/// further behind (a per-second schedule after a month without workers)
/// jumps to the next tick after now, its older ticks missed.
const MAX_TICKS_WALKED: usize = 10_000;

/// When a schedule ticks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timing {
    /// At each time a cron expression matches, read as wall-clock time in
    /// a time zone (an IANA name such as `Europe/Berlin`, or `UTC`).
    ///
    /// The expression has five fields (minute, hour, day of month, month,
    /// day of week) or six (seconds first), and the aliases `@hourly`,
    /// `@daily`, `@weekly`, `@monthly` and `@yearly`. Daylight-saving
    /// changes neither skip nor double a tick: a time that does not exist
    /// on the day clocks go forward (02:30 in Berlin) ticks at the first
    /// time after the gap, and a time that happens twice on the day they go
    /// back ticks once, the first time; an expression that ticks every
    /// minute or hour keeps ticking through both halves of a repeated hour.
    Cron {
        /// The cron expression.
        expression: String,
        /// The time zone it is read in.
        zone: String,
    },
    /// Every this long, counted from when the schedule was created (at
    /// least one second).
    Every(Duration),
}

/// What becomes of ticks that no worker enqueued in time (see
/// [`Schedule::grace`]): the fleet was stopped, or the schedule paused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// The missed ticks of one outage become one task, enqueued when a
    /// worker next runs, carrying the time of the latest of them. The
    /// default: a nightly job runs once after a night without workers.
    #[default]
    RunOnce,
    /// Missed ticks are dropped; the schedule goes on with its next tick.
    Skip,
}

impl Missed {
    /// The name used by the command line and the database: `run-once` or
    /// `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::RunOnce => "run-once",
            Missed::Skip => "skip",
        }
    }
}

impl FromStr for Missed {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "run-once" => Ok(Missed::RunOnce),
            "skip" => Ok(Missed::Skip),
            _ => Err(Error::invalid(
                "missed",
                format!("{text:?} is not a missed-tick policy; use run-once or skip"),
            )),
        }
    }
}

/// A periodic task: which task to enqueue, and when.
///
/// Declare schedules when a process starts, with
/// [`Worker::schedule`](crate::worker::Worker::schedule) or
/// [`Schedules::upsert`](crate::Schedules::upsert): declaring the same
/// schedule again changes nothing, so every process may declare it. A
/// tick's task carries the tick's time as its not-before time
/// ([`Task::not_before`](crate::Task::not_before)).
///
/// ```
/// use std::time::Duration;
/// use taskq::{Missed, Schedule};
///
/// // Every night at 3 in Berlin, skipped if no worker ran then:
/// let nightly = Schedule::cron("nightly-report", "report", "0 3 * * *")
///     .in_zone("Europe/Berlin")
///     .payload_json(&serde_json::json!({"kind": "daily"}))?
///     .missed(Missed::Skip);
/// nightly.validate()?;
/// // Every five minutes, from when it is first declared:
/// let poll = Schedule::every("poll-feeds", "poll", Duration::from_secs(300));
/// poll.validate()?;
/// # Ok::<(), taskq::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The schedule's name, unique in the database.
    pub name: String,
    /// The action of the tasks it enqueues.
    pub action: String,
    /// The payload of each tick's task. Default: JSON `null`.
    pub payload: Vec<u8>,
    /// How each tick's task runs. `not_before` and `parent` must be unset:
    /// a tick's task runs at its tick. A unique key keeps a tick from
    /// adding a task while the previous tick's task still holds the key
    /// (the tick then counts as enqueued). Default: the defaults.
    pub options: EnqueueOptions,
    /// When it ticks.
    pub timing: Timing,
    /// What becomes of missed ticks. Default: [`Missed::RunOnce`].
    pub missed: Missed,
    /// How late a worker may enqueue a tick before it counts as missed:
    /// ticks found later than this after their time follow
    /// [`missed`](Self::missed). Default: 1 minute.
    pub grace: Duration,
}

/// [`Schedule::grace`] unless told otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

impl Schedule {
    /// A schedule of `action` at the times of a cron `expression`, in UTC
    /// unless [`in_zone`](Self::in_zone) says otherwise.
    pub fn cron(
        name: impl Into<String>,
        action: impl Into<String>,
        expression: impl Into<String>,
    ) -> Self {
        Self::new(
            name.into(),
            action.into(),
            Timing::Cron {
                expression: expression.into(),
                zone: "UTC".to_owned(),
            },
        )
    }

    /// A schedule of `action` every `interval`.
    pub fn every(name: impl Into<String>, action: impl Into<String>, interval: Duration) -> Self {
        Self::new(name.into(), action.into(), Timing::Every(interval))
    }

    fn new(name: String, action: String, timing: Timing) -> Self {
        Schedule {
            name,
            action,
            payload: b"null".to_vec(),
            options: EnqueueOptions::default(),
            timing,
            missed: Missed::default(),
            grace: DEFAULT_GRACE,
        }
    }

    /// Reads a cron schedule's expression in the time zone `zone`.
    pub fn in_zone(mut self, zone: impl Into<String>) -> Self {
        if let Timing::Cron { zone: z, .. } = &mut self.timing {
            *z = zone.into();
        }
        self
    }

    /// Sets the payload to `payload` encoded as JSON.
    pub fn payload_json<T: Serialize + ?Sized>(mut self, payload: &T) -> Result<Self> {
        self.payload =
            serde_json::to_vec(payload).map_err(|source| Error::PayloadEncode { source })?;
        Ok(self)
    }

    /// Sets the options of each tick's task.
    pub fn options(mut self, options: EnqueueOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets what becomes of missed ticks.
    pub fn missed(mut self, missed: Missed) -> Self {
        self.missed = missed;
        self
    }

    /// Sets how late a tick may be enqueued before it counts as missed.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Checks every field, returning [`Error::InvalidInput`] naming the
    /// first one that is wrong: a cron expression that does not parse and
    /// an unknown time zone included.
    pub fn validate(&self) -> Result<()> {
        validate_name(
            "schedule",
            "schedule name",
            &self.name,
            MAX_SCHEDULE_NAME_LEN,
        )?;
        validate_action(&self.action)?;
        self.options.validate()?;
        if self.options.not_before.is_some() {
            return Err(Error::invalid(
                "not_before",
                "a schedule's tasks run at their tick; leave not_before unset",
            ));
        }
        if self.options.parent.is_some() {
            return Err(Error::invalid(
                "parent",
                "a schedule's tasks have no parent",
            ));
        }
        validate_duration("grace", self.grace, false)?;
        self.clock().map(drop)
    }

    /// The parsed timing.
    fn clock(&self) -> Result<Ticker> {
        Ticker::of(&self.timing)
    }

    /// The first tick after `now`, for a schedule declared at `now`.
    pub(crate) fn first_tick(&self, now: SystemTime) -> Result<SystemTime> {
        self.clock()?.after(now)
    }

    /// The schedule's task, ready at once (see `Schedules::run_now`).
    pub(crate) fn task(&self) -> NewTask {
        NewTask {
            action: self.action.clone(),
            payload: self.payload.clone(),
            options: self.options.clone(),
        }
    }

    /// The task of the tick at `tick`.
    pub(crate) fn task_at(&self, tick: SystemTime) -> NewTask {
        let mut task = self.task();
        task.options.not_before = Some(NotBefore::At(tick));
        task
    }

    /// What to do with a schedule whose next tick is `next` when it is
    /// `now`: the ticks to enqueue and the next tick after them.
    pub(crate) fn plan(&self, next: SystemTime, now: SystemTime) -> Result<Plan> {
        let ticker = self.clock()?;
        let late_from = now
            .checked_sub(self.grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let (mut on_time, mut latest_missed) = (Vec::new(), None);
        let mut tick = next;
        let mut walked = 0;
        while tick <= now {
            walked += 1;
            if walked > MAX_TICKS_WALKED {
                // Far behind: everything up to now is missed.
                latest_missed = Some(tick);
                tick = ticker.after(now)?;
                break;
            }
            if tick < late_from {
                latest_missed = Some(tick);
            } else {
                on_time.push(tick);
            }
            tick = ticker.after(tick)?;
        }
        let mut ticks = Vec::with_capacity(on_time.len() + 1);
        if self.missed == Missed::RunOnce {
            ticks.extend(latest_missed);
        }
        ticks.extend(on_time);
        Ok(Plan {
            ticks,
            missed: latest_missed.is_some(),
            next: tick,
        })
    }

    /// Whether `other` ticks at other times than this one: then a stored
    /// schedule's next tick is computed again when it is declared anew.
    pub(crate) fn timing_differs(&self, other: &Schedule) -> bool {
        self.timing != other.timing
    }
}

/// What a look at a due schedule decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The ticks to enqueue, oldest first (one task each).
    pub(crate) ticks: Vec<SystemTime>,
    /// Whether ticks were missed.
    pub(crate) missed: bool,
    /// The schedule's next tick after those.
    pub(crate) next: SystemTime,
}

/// A parsed timing: the next tick after a time.
enum Ticker {
    Cron(Box<croner::Cron>, jiff::tz::TimeZone),
    Every(Duration),
}

impl Ticker {
    fn of(timing: &Timing) -> Result<Self> {
        match timing {
            Timing::Every(interval) => {
                validate_duration("interval", *interval, false)?;
                if *interval < Duration::from_secs(1) {
                    return Err(Error::invalid("interval", "must be at least 1 second"));
                }
                Ok(Ticker::Every(*interval))
            }
            Timing::Cron { expression, zone } => {
                let cron = croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Optional)
                    .build()
                    .parse(expression)
                    .map_err(|e| {
                        Error::invalid(
                            "cron",
                            format!("{expression:?} is not a cron expression: {e}"),
                        )
                    })?;
                let zone = jiff::tz::TimeZone::get(zone).map_err(|e| {
                    Error::invalid("zone", format!("{zone:?} is not a known time zone: {e}"))
                })?;
                Ok(Ticker::Cron(Box::new(cron), zone))
            }
        }
    }

    /// The first tick strictly after `time`.
    fn after(&self, time: SystemTime) -> Result<SystemTime> {
        match self {
            Ticker::Every(interval) => time
                .checked_add(*interval)
                .ok_or_else(|| Error::invalid("interval", "the next tick is out of range")),
            Ticker::Cron(cron, zone) => {
                let now = jiff::Timestamp::try_from(time)
                    .map_err(|e| Error::invalid("cron", format!("time out of range: {e}")))?
                    .to_zoned(zone.clone());
                let next = cron.find_next_occurrence(&now, false).map_err(|e| {
                    Error::invalid(
                        "cron",
                        format!("{:?} never ticks again: {e}", cron.pattern.to_string()),
                    )
                })?;
                Ok(SystemTime::from(next.timestamp()))
            }
        }
    }
}

/// A stored schedule and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleInfo {
    /// The schedule as last declared.
    pub schedule: Schedule,
    /// Paused: no worker enqueues its ticks until it is resumed (ticks
    /// that came due meanwhile are then missed ones).
    pub paused: bool,
    /// Its next tick.
    pub next_at: SystemTime,
    /// The time of the last tick enqueued, if any.
    pub last_at: Option<SystemTime>,
    /// The task of that tick (or the task that held its unique key).
    pub last_task: Option<TaskId>,
}

/// What [`Schedules::upsert`](crate::Schedules::upsert) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Upserted {
    /// There was no schedule of that name; now there is.
    Created,
    /// The stored schedule was different; it is now the one given (its
    /// next tick computed again if its timing changed).
    Changed,
    /// The stored schedule was already the one given.
    Unchanged,
}

/// A schedule as its row stores it, read or written by a backend.
#[derive(Clone, Debug)]
pub(crate) struct StoredSchedule {
    pub(crate) name: String,
    pub(crate) action: String,
    pub(crate) payload: Vec<u8>,
    /// [`StoredOptions::text`].
    pub(crate) options: String,
    pub(crate) cron: Option<String>,
    pub(crate) zone: Option<String>,
    pub(crate) every_us: Option<i64>,
    pub(crate) missed: String,
    pub(crate) grace_us: i64,
    pub(crate) paused: bool,
    pub(crate) next_at: i64,
    pub(crate) last_at: Option<i64>,
    pub(crate) last_task: Option<i64>,
}

impl StoredSchedule {
    /// The row of `schedule`, paused or not, next ticking at `next_at`.
    pub(crate) fn of(schedule: &Schedule, next_at: SystemTime) -> Self {
        let (cron, zone, every_us) = match &schedule.timing {
            Timing::Cron { expression, zone } => {
                (Some(expression.clone()), Some(zone.clone()), None)
            }
            Timing::Every(every) => (None, None, Some(micros::from_duration(*every))),
        };
        StoredSchedule {
            name: schedule.name.clone(),
            action: schedule.action.clone(),
            payload: schedule.payload.clone(),
            options: StoredOptions::text(&schedule.options),
            cron,
            zone,
            every_us,
            missed: schedule.missed.as_str().to_owned(),
            grace_us: micros::from_duration(schedule.grace),
            paused: false,
            next_at: micros::from_time(next_at),
            last_at: None,
            last_task: None,
        }
    }

    /// The schedule and its standing, as read.
    pub(crate) fn info(self) -> Result<ScheduleInfo> {
        let timing = match (self.cron, self.zone, self.every_us) {
            (Some(expression), Some(zone), None) => Timing::Cron { expression, zone },
            (None, None, Some(every)) => Timing::Every(micros::to_duration(every)),
            _ => {
                return Err(Error::other(format!(
                    "the stored schedule {:?} has neither a cron expression nor an interval",
                    self.name
                )))
            }
        };
        Ok(ScheduleInfo {
            schedule: Schedule {
                name: self.name,
                action: self.action,
                payload: self.payload,
                options: StoredOptions::parse(&self.options)?,
                timing,
                missed: self.missed.parse()?,
                grace: micros::to_duration(self.grace_us),
            },
            paused: self.paused,
            next_at: micros::to_time(self.next_at),
            last_at: self.last_at.map(micros::to_time),
            last_task: self.last_task.map(TaskId),
        })
    }
}

/// What declaring a schedule changes in its stored row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UpsertPlan {
    pub(crate) upserted: Upserted,
    /// The next tick to store: `None` keeps the stored one.
    pub(crate) next_at: Option<SystemTime>,
}

impl UpsertPlan {
    /// Declaring `given` at `now` over the `stored` schedule (if any).
    pub(crate) fn of(stored: Option<&Schedule>, given: &Schedule, now: SystemTime) -> Result<Self> {
        let (upserted, next_at) = match stored {
            None => (Upserted::Created, Some(given.first_tick(now)?)),
            Some(stored) if stored == given => (Upserted::Unchanged, None),
            Some(stored) if stored.timing_differs(given) => {
                (Upserted::Changed, Some(given.first_tick(now)?))
            }
            Some(_) => (Upserted::Changed, None),
        };
        Ok(UpsertPlan { upserted, next_at })
    }
}

/// How a schedule's task options are stored: one JSON text column.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredOptions {
    max_tries: i32,
    timeout_us: u64,
    priority: i16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unique: Option<StoredUnique>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    concurrency_key: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredUnique {
    key: String,
    finished: Vec<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period_us: Option<u64>,
}

impl StoredOptions {
    /// The options as stored.
    pub(crate) fn text(options: &EnqueueOptions) -> String {
        let stored = StoredOptions {
            max_tries: options.max_tries,
            timeout_us: options.timeout.as_micros() as u64,
            priority: options.priority,
            unique: options.unique.as_ref().map(|u| StoredUnique {
                key: u.key.clone(),
                finished: u.finished.clone(),
                period_us: u.period.map(|p| p.as_micros() as u64),
            }),
            concurrency_key: options.concurrency_key.clone(),
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// The options stored as `text`.
    pub(crate) fn parse(text: &str) -> Result<EnqueueOptions> {
        let stored: StoredOptions = serde_json::from_str(text)
            .map_err(|e| Error::other(format!("a stored schedule's options do not read: {e}")))?;
        Ok(EnqueueOptions {
            max_tries: stored.max_tries,
            timeout: Duration::from_micros(stored.timeout_us),
            priority: stored.priority,
            unique: stored.unique.map(|u| Unique {
                key: u.key,
                finished: u.finished,
                period: u.period_us.map(Duration::from_micros),
            }),
            concurrency_key: stored.concurrency_key,
            ..EnqueueOptions::default()
        })
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
