//! Periodic tasks from the queue: declare, list, pause, resume, remove
//! and run schedules, and enqueue the ticks that are due.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::schedule::{Schedule, ScheduleInfo, Upserted};
use crate::unique::Enqueued;

/// The schedules of a queue's database ([`Queue::schedules`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), taskq::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
/// use std::time::Duration;
/// use taskq::{Schedule, Upserted};
///
/// let hourly = Schedule::cron("rollup", "rollup", "0 * * * *").in_zone("Europe/Paris");
/// assert_eq!(queue.schedules().upsert(hourly.clone()).await?, Upserted::Created);
/// // Every process may declare it at start-up: the second time changes nothing.
/// assert_eq!(queue.schedules().upsert(hourly).await?, Upserted::Unchanged);
///
/// let stored = queue.schedules().get("rollup").await?.unwrap();
/// println!("next rollup at {:?}", stored.next_at);
/// // Workers enqueue due ticks by themselves; this is what they call:
/// let ticked = queue.schedules().tick().await?;
/// assert_eq!(ticked.enqueued, 0, "the first tick is still ahead");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Schedules<'a> {
    queue: &'a Queue,
}

/// What one [`Schedules::tick`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ticked {
    /// Tasks added for due ticks (a tick whose unique key another task
    /// held adds none, and its tick is taken all the same).
    pub enqueued: u64,
    /// Schedules whose missed ticks were handled by their policy.
    pub missed: u64,
    /// How long until the next tick of a schedule that is not paused, by
    /// the database's clock; `None` if there is none.
    pub next_in: Option<Duration>,
}

impl Queue {
    /// The schedules of periodic tasks stored in this queue's database.
    pub fn schedules(&self) -> Schedules<'_> {
        Schedules { queue: self }
    }
}

impl Schedules<'_> {
    /// Declares `schedule`: creates it, its first tick the first after
    /// now, or makes the stored schedule of that name this one. The next
    /// tick stays as it was unless the timing changed, and a paused
    /// schedule stays paused; declaring the same schedule again changes
    /// nothing, so every process can declare its schedules at start-up.
    pub async fn upsert(&self, schedule: Schedule) -> Result<Upserted> {
        schedule.validate()?;
        self.queue.backend().schedule_upsert(&schedule).await
    }

    /// Every stored schedule, by name, with its next and last tick.
    pub async fn list(&self) -> Result<Vec<ScheduleInfo>> {
        Ok(self.queue.backend().schedule_list().await?.1)
    }

    /// The stored schedule `name`, if there is one.
    pub async fn get(&self, name: &str) -> Result<Option<ScheduleInfo>> {
        let all = self.list().await?;
        Ok(all.into_iter().find(|info| info.schedule.name == name))
    }

    /// Removes the schedule `name`; tasks it enqueued stay.
    /// [`Error::ScheduleNotFound`] if there is none.
    pub async fn remove(&self, name: &str) -> Result<()> {
        match self.queue.backend().schedule_remove(name).await? {
            true => Ok(()),
            false => Err(not_found(name)),
        }
    }

    /// Pauses the schedule `name` for every worker: none enqueues its
    /// ticks until it is resumed. Returns whether it was running.
    pub async fn pause(&self, name: &str) -> Result<bool> {
        self.set_paused(name, true).await
    }

    /// Resumes the schedule `name`. Ticks that came due while it was
    /// paused count as missed once their grace is over, and follow its
    /// [`Missed`](crate::Missed) policy. Returns whether it was paused.
    pub async fn resume(&self, name: &str) -> Result<bool> {
        self.set_paused(name, false).await
    }

    async fn set_paused(&self, name: &str, paused: bool) -> Result<bool> {
        self.queue
            .backend()
            .schedule_set_paused(name, paused)
            .await?
            .ok_or_else(|| not_found(name))
    }

    /// Enqueues the task of the schedule `name` now, besides its ticks
    /// (which stay as they are), paused or not.
    pub async fn run_now(&self, name: &str) -> Result<Enqueued> {
        let info = self.get(name).await?.ok_or_else(|| not_found(name))?;
        self.queue.enqueue_task(info.schedule.task()).await
    }

    /// Enqueues the ticks that are due, each exactly once however many
    /// processes call this at once: workers call it on their own (see
    /// [`Worker::schedule`](crate::worker::Worker::schedule)), so a
    /// program without a worker rarely needs it. A stored schedule that no
    /// longer reads (a time zone this build does not know) is skipped,
    /// with a warning in the log the first time. Each tick taken is
    /// counted in the `metrics` series `taskq_schedule_ticks_total`.
    pub async fn tick(&self) -> Result<Ticked> {
        let (now, schedules) = self.queue.backend().schedule_list().await?;
        let mut ticked = Ticked::default();
        let mut next: Option<SystemTime> = None;
        for info in schedules.into_iter().filter(|info| !info.paused) {
            let mut next_at = info.next_at;
            if next_at <= now {
                match self.take_ticks(&info, now).await {
                    Ok(Some(taken)) => {
                        ticked.enqueued += taken.enqueued;
                        ticked.missed += u64::from(taken.missed);
                        next_at = taken.next;
                    }
                    // Another process took these ticks: it knows the next.
                    Ok(None) => continue,
                    Err(error @ Error::InvalidInput { .. }) => {
                        warn_once(&info.schedule.name, &error);
                        continue;
                    }
                    Err(error) => return Err(error),
                }
            }
            next = Some(next.map_or(next_at, |n| n.min(next_at)));
        }
        ticked.next_in = next.map(|n| n.duration_since(now).unwrap_or_default());
        Ok(ticked)
    }

    /// Enqueues the due ticks of one schedule; `None` if another process
    /// took them first.
    async fn take_ticks(&self, info: &ScheduleInfo, now: SystemTime) -> Result<Option<Taken>> {
        let schedule = &info.schedule;
        let plan = schedule.plan(info.next_at, now)?;
        let tasks: Vec<_> = plan.ticks.iter().map(|&at| schedule.task_at(at)).collect();
        let added = self
            .queue
            .backend()
            .schedule_tick(&schedule.name, info.next_at, plan.next, tasks)
            .await?;
        let Some(added) = added else {
            return Ok(None);
        };
        let name = schedule.name.clone();
        if plan.missed {
            tracing::info!(
                schedule = name,
                policy = schedule.missed.as_str(),
                "ticks of a schedule were missed (no worker enqueued them in time)"
            );
            metrics::counter!("taskq_schedule_missed_total", "schedule" => name.clone())
                .increment(1);
        }
        metrics::counter!("taskq_schedule_ticks_total", "schedule" => name)
            .increment(plan.ticks.len() as u64);
        let enqueued = added.iter().filter(|e| !e.duplicate).count() as u64;
        if enqueued > 0 {
            self.queue.wake(std::slice::from_ref(&schedule.action));
        }
        Ok(Some(Taken {
            enqueued,
            missed: plan.missed,
            next: plan.next,
        }))
    }
}

/// What was taken of one due schedule.
struct Taken {
    enqueued: u64,
    missed: bool,
    next: SystemTime,
}

/// The schedules this process has warned about as unreadable.
static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Warns that the schedule `name` does not read (a time zone or cron
/// syntax this build does not know), once per process rather than at
/// every look.
fn warn_once(name: &str, error: &Error) {
    let first = WARNED
        .lock()
        .map(|mut warned| warned.insert(name.to_owned()))
        .unwrap_or(true);
    if first {
        tracing::warn!(schedule = name, %error, "skipping a schedule that does not read (said once per process)");
    }
}

fn not_found(name: &str) -> Error {
    Error::ScheduleNotFound {
        name: name.to_owned(),
    }
}
