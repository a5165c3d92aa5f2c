//! The one seam between the queue and a database.
//!
//! A backend stores tasks and moves them between states, each call one
//! atomic step. It decides nothing about retries or validation: the
//! [`Queue`](crate::Queue) does that and hands the backend finished
//! decisions. Times that depend on "now" (lease ends, delays) are passed as
//! durations so that the backend measures them with its own clock, the
//! database's where there is one.
//!
//! The conformance suite in `tests/conformance` is the specification every
//! backend must pass.
//!
//! This seam is for implementing a backend; applications use
//! [`Queue`](crate::Queue). It may change between minor versions.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::attempt::WorkerId;
use crate::error::Result;
pub use crate::limits::Held;
use crate::limits::{LimitInfo, Limits};
use crate::names::TaskId;
use crate::options::{Backoff, ListOptions};
use crate::schedule::{Schedule, ScheduleInfo, Upserted};
use crate::state::CancelOutcome;
use crate::state::State;
use crate::task::{ActionStats, LeaseRef, NewTask, Task};
use crate::throughput::Throughput;
use crate::unique::{Enqueued, RetryKey};
use crate::workflow::Links;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migration;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

mod connect;
pub(crate) use connect::connect;
#[cfg(feature = "sqlite")]
pub(crate) use connect::open_sqlite;
pub use connect::redact_url;

/// The partial index that holds every task in one state (both backends
/// create the same ones, migrations 0001 and 0004) and the condition a statement
/// repeats for the database to read through it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StateIndex {
    /// The index's name.
    pub(crate) name: &'static str,
    /// Its `WHERE` condition, as written in the migration.
    pub(crate) holds: &'static str,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl StateIndex {
    /// The index holding the tasks in `state`.
    pub(crate) fn of(state: State) -> Self {
        let (name, holds) = match state {
            State::Waiting => ("taskq_tasks_waiting", "state = 'waiting'"),
            State::Queued => ("taskq_tasks_ready", "state = 'queued'"),
            State::Running => ("taskq_tasks_leased", "state = 'running'"),
            State::Failed | State::Succeeded | State::Cancelled => {
                ("taskq_tasks_finished", "finished_at IS NOT NULL")
            }
        };
        StateIndex { name, holds }
    }
}

/// What a claim took, and what the action's limits held back.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Claimed {
    /// The tasks claimed, first by priority, then not-before, then id.
    pub tasks: Vec<Task>,
    /// Whether the action is limited, and when its rate admits the next.
    pub held: Held,
}

impl Claimed {
    /// Tasks claimed from an action without limits.
    pub fn unlimited(tasks: Vec<Task>) -> Self {
        Claimed {
            tasks,
            held: Held::default(),
        }
    }
}

/// How a page of `list` goes through the ids in one order: the comparison
/// with the `after` id, the sort direction, and the `after` id of the
/// first page (the smallest or largest integer, so that every page starts
/// with a range of the primary key).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PageOrder {
    /// `>` or `<`.
    pub(crate) after: &'static str,
    /// `ASC` or `DESC`.
    pub(crate) direction: &'static str,
    /// The `after` id when none is given.
    pub(crate) start: i64,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl PageOrder {
    /// The page order of `options`, and the `after` id to bind.
    pub(crate) fn of(options: &ListOptions) -> (Self, i64) {
        let page = match options.order {
            crate::options::Order::OldestFirst => PageOrder {
                after: ">",
                direction: "ASC",
                start: i64::MIN,
            },
            crate::options::Order::NewestFirst => PageOrder {
                after: "<",
                direction: "DESC",
                start: i64::MAX,
            },
        };
        (page, options.after.map_or(page.start, |id| id.0))
    }
}

/// How long a task whose lease expired waits before it may run again, in
/// microseconds: nothing after its first try, then `initial` doubling with
/// each try up to `max`, like a failed try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiryBackoff {
    /// The wait after the second try's lease expired, at most one hour.
    pub initial_micros: i64,
    /// The longest wait.
    pub max_micros: i64,
}

impl ExpiryBackoff {
    /// The longest first wait: keeps `initial << 20` within an `i64`.
    const MAX_INITIAL_MICROS: i64 = 3_600_000_000;

    /// The expiry backoff that matches a failure backoff.
    pub fn from_backoff(backoff: &Backoff) -> Self {
        ExpiryBackoff {
            initial_micros: crate::micros::from_duration(backoff.initial)
                .min(Self::MAX_INITIAL_MICROS),
            max_micros: crate::micros::from_duration(backoff.max),
        }
    }

    /// The wait after the lease of try number `tries` expired.
    pub fn delay(&self, tries: i32) -> std::time::Duration {
        if tries <= 1 {
            return std::time::Duration::ZERO;
        }
        let shift = (tries - 2).min(20) as u32;
        crate::micros::to_duration((self.initial_micros << shift).min(self.max_micros))
    }
}

/// How a failed try ends (see [`Backend::task_fail`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailTo {
    /// Queued again, to run this long from now.
    Retry(Duration),
    /// Failed for good.
    Fail,
    /// Cancelled.
    Cancel,
}

/// What a heartbeat found (see [`Backend::task_extend`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extended {
    /// The new lease end.
    pub expires: SystemTime,
    /// Whether the task's cancellation was asked for.
    pub cancel_requested: bool,
}

/// Which tasks [`Backend::task_cancel`] cancels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelTarget {
    /// One task.
    Id(TaskId),
    /// The task of the action that holds the unique key and may still run.
    Key {
        /// The action.
        action: String,
        /// The key.
        key: String,
    },
    /// Every task of the action in the state (queued or running).
    State {
        /// The action.
        action: String,
        /// The state.
        state: State,
    },
}

/// Where a backend delivers what it hears of other processes' enqueues:
/// the waiting workers of a queue. Wake-ups are hints: a waiter looks for
/// itself when woken, and polls anyway.
pub trait Waiters: Send + Sync + 'static {
    /// The actions someone waits for idle now: found nothing to claim, and
    /// waits for a wake-up or the poll.
    fn waited(&self) -> Vec<String>;
    /// How many times a waiter began to wait idle so far: a backend that
    /// looks for ready tasks itself looks again when this moved, since a
    /// commit it saw while the waiter was claiming was not looked at for
    /// it. The default: never.
    fn idle_began(&self) -> u64 {
        0
    }
    /// Calls `signal` each time a waiter begins to wait idle, until it
    /// returns false (its listener is gone). The default ignores it.
    fn on_idle(&self, signal: Box<dyn Fn() -> bool + Send + Sync>) {
        let _ = signal;
    }
    /// Tasks of `action` may be ready.
    fn wake(&self, action: &str);
    /// Tasks of any action may be ready (hints may have been missed, say
    /// while a listening connection was down).
    fn wake_all(&self);
    /// The cancellation of the running task `id` was asked for. The
    /// default ignores it: a running handler hears it at its next
    /// heartbeat.
    fn cancel_requested(&self, id: TaskId) {
        let _ = id;
    }
    /// The tasks whose handlers run in this process now, for a backend
    /// that looks for their cancellation requests itself (SQLite's watch).
    fn running(&self) -> Vec<TaskId> {
        Vec::new()
    }
}

thread_local! {
    static CALLER_MAY_WRITE: Cell<bool> = const { Cell::new(false) };
}

/// While alive, a backend may run an uncontended write on this thread
/// itself: the thread is a blocking caller's own, which waits for the
/// write anyway (the blocking facade), not a worker of an async runtime,
/// which must never block.
pub(crate) struct CallerWrites {
    was: bool,
}

impl CallerWrites {
    /// Allows writes on this thread until dropped.
    pub(crate) fn allow() -> Self {
        CallerWrites {
            was: CALLER_MAY_WRITE.with(|may| may.replace(true)),
        }
    }
}

impl Drop for CallerWrites {
    fn drop(&mut self) {
        CALLER_MAY_WRITE.with(|may| may.set(self.was));
    }
}

/// Whether this thread is a blocking caller's, waiting for its own
/// write (see [`CallerWrites`]).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn caller_may_write() -> bool {
    CALLER_MAY_WRITE.with(Cell::get)
}

/// Storage for tasks. Every method is one transaction; every method that
/// takes a [`LeaseRef`] changes nothing and returns
/// [`Error::LeaseLost`](crate::Error::LeaseLost) unless the task is running
/// under exactly that lease token.
#[async_trait]
pub trait Backend: fmt::Debug + Send + Sync + 'static {
    /// Creates or upgrades the schema; safe to run from several processes
    /// at once; refuses a schema newer than this build.
    async fn migrate(&self) -> Result<()>;

    /// Inserts validated tasks in one transaction, all or none, and returns
    /// what became of each, in order, once committed: a task whose unique
    /// key another task holds (an earlier one of the batch included) is
    /// not inserted, and its entry names the holder.
    async fn task_insert_many(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>>;

    /// Inserts one validated task without a unique key that is due at
    /// once and, in the same transaction, claims it for `worker` as
    /// [`task_claim`](Self::task_claim) would (tries 1, a new lease
    /// token, a lease ending its timeout from now) when no other task of
    /// its action is ready, that is queued and due or running under an
    /// expired lease, and the action is not paused: then it is the first
    /// ready task. Returns what was enqueued, and the claimed task when it
    /// was claimed. A queue uses it to hand a new task straight to a worker
    /// of its own that waits for the action. The default only inserts.
    async fn task_insert_claimed(
        &self,
        task: NewTask,
        worker: &WorkerId,
    ) -> Result<(Enqueued, Option<Task>)> {
        let _ = worker;
        let ids = self.task_insert_many(vec![task]).await?;
        Ok((ids[0], None))
    }

    /// Claims up to `limit` ready tasks of `action`, none while it is
    /// paused, first by priority, then not-before, then id: each gets
    /// `tries + 1`, a new lease token, a lease ending `timeout` from now
    /// and `worker` as its holder. Expired leases of the action are
    /// requeued first, as [`task_requeue_expired`](Self::task_requeue_expired)
    /// does. When the action has [limits](Self::limit_set), the claim
    /// takes only what they admit, in its own transaction, passing over
    /// the tasks of keys at their per-key limit, and says so in
    /// [`Claimed::held`].
    async fn task_claim(
        &self,
        action: &str,
        limit: u32,
        expiry: ExpiryBackoff,
        worker: &WorkerId,
    ) -> Result<Claimed>;

    /// Completes the leased task (deleting it, or marking it succeeded when
    /// `retain` is set, with `result` if given: the front door retains
    /// every task completed with a result) and inserts `follow_ups` with
    /// their parent set, all in one transaction. Says what became of each
    /// follow-up.
    async fn task_complete(
        &self,
        lease: LeaseRef,
        follow_ups: Vec<NewTask>,
        retain: bool,
        result: Option<Vec<u8>>,
    ) -> Result<Vec<Enqueued>>;

    /// Records a failed try, with `error` as the task's last error, and
    /// ends it as `to` says, or cancelled if its cancellation was asked
    /// for. Returns the state it is in now.
    async fn task_fail(&self, lease: LeaseRef, error: &str, to: FailTo) -> Result<State>;

    /// Moves the lease end to `by` from now; says whether the task's
    /// cancellation was asked for.
    async fn task_extend(&self, lease: LeaseRef, by: Duration) -> Result<Extended>;

    /// Gives the task back without counting the try; it may run again
    /// after `delay` (at once, keeping its place in line, when zero). A
    /// task whose cancellation was asked for ends cancelled instead.
    /// Returns the state it is in now.
    async fn task_release(&self, lease: LeaseRef, delay: Duration) -> Result<State>;

    /// Requeues (or fails, when their tries are used up) every running
    /// task whose lease has expired; returns how many it moved. A task
    /// whose first try expired may run again at once; after a later try it
    /// waits [`ExpiryBackoff::delay`], so a task that kills its workers
    /// does not loop hot.
    async fn task_requeue_expired(&self, expiry: ExpiryBackoff) -> Result<u64>;

    /// Counts the tasks of `action` that a claim could take now (none
    /// while it is paused), without taking a write lock.
    async fn task_count_ready(&self, action: &str) -> Result<u64>;

    /// Counts tasks per action and state, and marks the paused actions.
    async fn task_stats(&self) -> Result<Vec<ActionStats>>;

    /// One task by id.
    async fn task_get(&self, id: TaskId) -> Result<Option<Task>>;

    /// A page of tasks matching validated options.
    async fn task_list(&self, options: &ListOptions) -> Result<Vec<Task>>;

    /// Queues a failed or cancelled task again with its tries reset, to
    /// run now (or waiting, if some of its dependencies may still run),
    /// doing with its unique key what `key` says. Its waiting dependents
    /// wait for it again; with `dependents`, so do those it had
    /// cancelled, down the graph (a dependent another failed dependency
    /// cancelled too stays cancelled, unless it runs anyway).
    /// [`Error::TaskNotFound`](crate::Error::TaskNotFound),
    /// [`Error::WrongState`](crate::Error::WrongState) or, when another
    /// task holds the key, [`Error::Duplicate`](crate::Error::Duplicate)
    /// otherwise.
    async fn task_retry(&self, id: TaskId, key: RetryKey, dependents: bool) -> Result<()>;

    /// The dependencies and dependents of a task, by id (empty for a task
    /// without, or one that does not exist).
    async fn task_links(&self, id: TaskId) -> Result<Links>;

    /// Cancels the tasks of `target` that may still run: one that has not
    /// started ends cancelled; a running one gets its cancellation asked
    /// for (and its worker is told, where the backend can). Returns each
    /// one's id and what was done.
    async fn task_cancel(&self, target: CancelTarget) -> Result<Vec<(TaskId, CancelOutcome)>>;

    /// Pauses `action` for every worker; false if it already was.
    async fn task_pause(&self, action: &str) -> Result<bool>;

    /// Resumes a paused `action` and wakes its waiters; false if it was
    /// not paused.
    async fn task_resume(&self, action: &str) -> Result<bool>;

    /// The paused actions, sorted.
    async fn task_paused(&self) -> Result<Vec<String>>;

    /// Deletes a task in any state.
    /// [`Error::TaskNotFound`](crate::Error::TaskNotFound) if there is none.
    async fn task_delete(&self, id: TaskId) -> Result<()>;

    /// Whether the backend hears tasks that other processes enqueue and
    /// wakes idle waiters for them (see [`listen`](Self::listen)):
    /// PostgreSQL through `LISTEN`, SQLite by watching the file's data
    /// version.
    fn supports_notify(&self) -> bool {
        false
    }

    /// Which database this is, the same for every backend of this process
    /// opened on it (the canonical path of a SQLite file; the server,
    /// database and schema of PostgreSQL), so that queues on one database
    /// share their wake-ups and hand-overs. Never holds a password. The
    /// default, `None`: the queue shares nothing.
    fn location(&self) -> Option<String> {
        None
    }

    /// Starts delivering wake-ups for tasks that other processes enqueue,
    /// if the backend [supports it](Self::supports_notify). Called at most
    /// once per queue, from inside a tokio runtime, when a worker first
    /// waits. The default does nothing: waiters poll.
    fn listen(&self, waiters: Arc<dyn Waiters>) {
        let _ = waiters;
    }

    /// Deletes tasks in a finished `state` that finished at least
    /// `older_than` ago, the oldest first, at most `limit` of them (all
    /// with `None`); returns how many. Tasks another transaction holds
    /// are left for later, so that two purges at once take different
    /// tasks and neither waits.
    async fn task_purge(
        &self,
        state: State,
        older_than: Duration,
        limit: Option<u32>,
    ) -> Result<u64>;

    /// Adds the counts of `rows` (one per minute and action at most) to
    /// the throughput history, in one transaction, and removes the
    /// history of minutes before `keep_from`.
    async fn throughput_add(&self, rows: &[Throughput], keep_from: SystemTime) -> Result<()>;

    /// The throughput history from the minute of `since` on, oldest minute
    /// first, then by action.
    async fn throughput_since(&self, since: SystemTime) -> Result<Vec<Throughput>>;

    /// Every stored schedule, by name, and the time now by the backend's
    /// clock (the database server's where there is one).
    async fn schedule_list(&self) -> Result<(SystemTime, Vec<ScheduleInfo>)>;

    /// Stores a validated `schedule`: a new one next ticks at its first
    /// tick after now; a stored one takes the given fields and keeps its
    /// next tick unless its timing changed (see `UpsertPlan`), and stays
    /// paused if it was. Concurrent declarations of one schedule store it
    /// once.
    async fn schedule_upsert(&self, schedule: &Schedule) -> Result<Upserted>;

    /// Removes the schedule `name`; whether there was one.
    async fn schedule_remove(&self, name: &str) -> Result<bool>;

    /// Pauses or resumes the schedule `name`: whether that changed it, or
    /// `None` if there is no such schedule.
    async fn schedule_set_paused(&self, name: &str, paused: bool) -> Result<Option<bool>>;

    /// Enqueues ticks, exactly once: in one transaction, if the schedule
    /// `name` is not paused and its next tick is still `from`, moves it to
    /// `to`, inserts `tasks` (the ticks' tasks, oldest first) and records
    /// the last one as its last tick. `None` when it was not (another
    /// worker took these ticks first, or the schedule changed).
    async fn schedule_tick(
        &self,
        name: &str,
        from: SystemTime,
        to: SystemTime,
        tasks: Vec<NewTask>,
    ) -> Result<Option<Vec<Enqueued>>>;

    /// Sets the limits of `action` (validated, not empty), replacing any
    /// it had. A changed rate starts with a bucket no fuller than before
    /// (full for a new one).
    async fn limit_set(&self, action: &str, limits: Limits) -> Result<()>;

    /// Removes the limits of `action`; says whether it had any.
    async fn limit_clear(&self, action: &str) -> Result<bool>;

    /// Every limited action with its limits and what of them is in use,
    /// by action.
    async fn limit_list(&self) -> Result<Vec<LimitInfo>>;

    /// Tells the waiters of other processes that a slot of the limited
    /// `action` came free (a task of it ended). The default tells no one:
    /// they find it at their next look.
    fn announce_freed(&self, action: &str) {
        let _ = action;
    }

    /// Sends what the backend still holds back for the database (wake-ups
    /// waiting for their window, say) and waits until it is sent, so that
    /// a process may exit. The backend stays usable. The default has
    /// nothing to send.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expiry_backoff_spares_the_first_try_then_doubles() {
        let expiry = ExpiryBackoff::from_backoff(&Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: 0.25,
        });
        assert_eq!(expiry.delay(1), Duration::ZERO);
        assert_eq!(expiry.delay(2), Duration::from_secs(1));
        assert_eq!(expiry.delay(4), Duration::from_secs(4));
        assert_eq!(expiry.delay(1000), Duration::from_secs(60));
        let huge = ExpiryBackoff::from_backoff(&Backoff {
            initial: crate::MAX_DURATION,
            max: crate::MAX_DURATION,
            jitter: 0.0,
        });
        assert_eq!(huge.delay(i32::MAX), crate::MAX_DURATION, "no overflow");
    }
}
