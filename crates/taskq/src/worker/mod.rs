//! The worker runtime: register a handler per action, and the worker
//! claims tasks, runs handlers concurrently, keeps their leases alive, and
//! applies what they return.
//!
//! ```
//! use std::time::Duration;
//! use serde::Deserialize;
//! use taskq::worker::{Outcome, TaskContext, Worker, WorkerConfig};
//! use taskq::{NewTask, Queue};
//!
//! #[derive(Deserialize)]
//! struct Email { to: String }
//!
//! async fn send_email(email: Email, ctx: TaskContext) -> Result<Outcome, String> {
//!     if email.to.is_empty() {
//!         return Ok(Outcome::fail("no recipient")); // retrying cannot help
//!     }
//!     println!("try {} of task {}: mailing {}", ctx.tries(), ctx.id(), email.to);
//!     Ok(Outcome::follow_up(vec![NewTask::json("audit", &email.to).map_err(|e| e.to_string())?]))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), taskq::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let queue = Queue::open_sqlite(dir.path().join("jobs.db")).await?;
//! queue.enqueue("email", &serde_json::json!({"to": "ada@example.com"})).await?;
//!
//! let mut worker = Worker::new(queue.clone(), WorkerConfig::default());
//! worker.handle("email", send_email)?;
//! // Runs until SIGINT or SIGTERM with `worker.run()`; here, for two seconds.
//! worker.run_until(tokio::time::sleep(Duration::from_secs(2))).await?;
//! assert_eq!(queue.len("audit").await?, 1);
//! # Ok(())
//! # }
//! ```

mod dispatch;
mod handler;
#[cfg(feature = "testing")]
mod inline;
mod meter;
pub(crate) mod metrics;
mod retention;
mod runner;
mod scheduler;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::attempt::WorkerId;
use crate::error::{Error, Result};
use crate::names::validate_action;
use crate::options::validate_duration;
use crate::queue::{Queue, MAX_CLAIM_BATCH};
use crate::schedule::Schedule;

pub use handler::{Outcome, StopReason, TaskContext};
pub use metrics::{MetricsSnapshot, WorkerMetrics};
pub use retention::Retention;
/// The token type of [`TaskContext::cancellation`] and
/// [`blocking::Worker::run_until`](crate::blocking::Worker::run_until).
pub use tokio_util::sync::CancellationToken;

use handler::{ErasedHandler, RawHandler, TypedHandler};

/// Settings of a [`Worker`]. Every field has a default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Handlers that may run at once, over all actions. Default: 10.
    pub concurrency: usize,
    /// The most tasks one claim takes. A worker claims as many tasks as it
    /// has idle handler slots and, when its handlers are quick, a few more:
    /// one for each busy slot whose handler will likely be done when the
    /// claim's answer arrives, and those that start within about 50 ms.
    /// So no lease is held for work that is not started soon. Default: 100.
    pub claim_batch: u32,
    /// After shutdown begins, how long running handlers may take to
    /// finish before they are cancelled and their tasks released to run
    /// again elsewhere. Default: 30 seconds.
    pub shutdown_timeout: Duration,
    /// The first wait after a failed claim (for example while the database
    /// is unreachable); it doubles up to ten times this, so a worker finds
    /// a database that came back within that time. Default: 100 ms (at
    /// most 1 second between tries).
    pub error_backoff: Duration,
    /// When a handler's lease is lost, how long it may take to notice its
    /// [cancellation](TaskContext::cancelled) and return before it is
    /// aborted. Its result is discarded either way. Default: 5 seconds.
    pub cancel_grace: Duration,
    /// A name for this worker, recorded with each task it claims (with
    /// the host name and process id) and shown by `taskq show`. Default:
    /// none.
    pub name: Option<String>,
    /// Enqueue the due ticks of the database's schedules (see
    /// [`Worker::schedule`]). Any number of workers may: each tick is
    /// enqueued once. Default: `true`.
    pub run_schedules: bool,
    /// How long finished tasks stay before this worker (like every other)
    /// removes them. Default: [`Retention::default`] (succeeded 7 days,
    /// failed and cancelled 30 days); [`Retention::KEEP_ALL`] removes
    /// nothing.
    pub retention: Retention,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 10,
            claim_batch: 100,
            shutdown_timeout: Duration::from_secs(30),
            error_backoff: Duration::from_millis(100),
            cancel_grace: Duration::from_secs(5),
            name: None,
            run_schedules: true,
            retention: Retention::default(),
        }
    }
}

impl WorkerConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.concurrency == 0 || self.concurrency > Semaphore::MAX_PERMITS {
            return Err(Error::invalid("concurrency", "must be at least 1"));
        }
        if self.claim_batch == 0 || self.claim_batch > MAX_CLAIM_BATCH {
            return Err(Error::invalid(
                "claim_batch",
                format!("must be between 1 and {MAX_CLAIM_BATCH}"),
            ));
        }
        validate_duration("shutdown_timeout", self.shutdown_timeout, true)?;
        validate_duration("cancel_grace", self.cancel_grace, true)?;
        if let Some(name) = &self.name {
            crate::names::validate_name("name", "worker name", name, 255)?;
        }
        self.retention.validate()?;
        validate_duration("error_backoff", self.error_backoff, false)
    }
}

struct Registration {
    action: String,
    handler: Arc<dyn ErasedHandler>,
    limit: Option<Arc<Semaphore>>,
    /// The most handlers of this action that may run at once.
    capacity: usize,
}

/// Runs handlers for the tasks of one queue. Build it, register a handler
/// per action, then [`run`](Worker::run) it.
///
/// For each task the worker decodes the payload into the handler's type
/// (a payload that does not decode fails the task for good), runs the
/// handler on its own tokio task, extends the lease every third of the
/// task's timeout while the handler runs, and applies the handler's
/// [`Outcome`]; an `Err` retries after the backoff, a panic fails the try.
pub struct Worker {
    queue: Queue,
    config: WorkerConfig,
    registrations: Vec<Registration>,
    schedules: Vec<Schedule>,
    metrics: Arc<WorkerMetrics>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let actions: Vec<&str> = self
            .registrations
            .iter()
            .map(|r| r.action.as_str())
            .collect();
        f.debug_struct("Worker")
            .field("config", &self.config)
            .field("actions", &actions)
            .finish_non_exhaustive()
    }
}

/// What the dispatchers and runners of one run share.
struct Shared {
    queue: Queue,
    /// Who claims: this process and the worker's name.
    worker: Arc<WorkerId>,
    config: WorkerConfig,
    metrics: Arc<WorkerMetrics>,
    /// The counts per action: the throughput history and the facade.
    meters: meter::Meters,
    slots: Arc<Semaphore>,
    /// Results being recorded after their handler's slot was freed. Bounded,
    /// so a database that records slowly slows down claiming too.
    recording: Arc<Semaphore>,
    /// Cancelled when shutdown begins: claim nothing more.
    stop_claiming: CancellationToken,
    /// Cancelled when the grace period is over: stop handlers, release.
    hard_stop: CancellationToken,
    /// An error no retry can fix (see [`Error::is_permanent`]), met by a
    /// claim: the worker shuts down and returns it.
    fatal: std::sync::Mutex<Option<Error>>,
    /// Cancelled when `fatal` is set.
    failed: CancellationToken,
    runners: TaskTracker,
}

impl Shared {
    /// What the runs of a worker on `queue` for `actions` share, before
    /// the first.
    fn new<'a>(
        queue: Queue,
        config: WorkerConfig,
        metrics: Arc<WorkerMetrics>,
        actions: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Shared {
            meters: meter::Meters::new(actions),
            slots: Arc::new(Semaphore::new(config.concurrency)),
            recording: Arc::new(Semaphore::new(
                config.concurrency + config.claim_batch as usize,
            )),
            queue,
            worker: Arc::new(WorkerId::this_process(config.name.clone())),
            config,
            metrics,
            stop_claiming: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
            fatal: std::sync::Mutex::new(None),
            failed: CancellationToken::new(),
            runners: TaskTracker::new(),
        }
    }

    /// Counts what became of a try, in the worker's counters and its
    /// action's meters.
    fn count(&self, meter: Option<&meter::ActionMeter>, event: metrics::Event) {
        self.metrics.count(event);
        meter.inspect(|m| m.count(event));
    }

    /// A try started after waiting `waited`.
    fn started(&self, meter: Option<&meter::ActionMeter>, waited: Duration) {
        self.metrics.start(waited);
        meter.inspect(|m| m.start(waited));
    }

    /// A handler ran for `ran`.
    fn finished(&self, meter: Option<&meter::ActionMeter>, ran: Duration) {
        self.metrics.finish(ran);
        meter.inspect(|m| m.finish(ran));
    }
}

/// A handler slot, held while the handler runs.
struct Slot {
    _global: OwnedSemaphorePermit,
    _action: Option<OwnedSemaphorePermit>,
}

impl Worker {
    /// A worker for `queue`, with no handlers yet.
    pub fn new(queue: Queue, config: WorkerConfig) -> Self {
        Worker {
            queue,
            config,
            registrations: Vec::new(),
            schedules: Vec::new(),
            metrics: Arc::default(),
        }
    }

    /// Registers `handler` for `action`. The handler receives the payload
    /// decoded from JSON as `T`, and a [`TaskContext`]; it returns
    /// `Ok(())` or `Ok(`[`Outcome`]`)`, or an error whose text becomes the
    /// task's last error before a retry.
    pub fn handle<T, H, Fut, R, E>(&mut self, action: &str, handler: H) -> Result<&mut Self>
    where
        T: DeserializeOwned + Send + 'static,
        H: Fn(T, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
        R: Into<Outcome>,
        E: std::fmt::Display,
    {
        self.register(action, None, Arc::new(TypedHandler::new(handler)))
    }

    /// Like [`handle`](Worker::handle), with at most `limit` handlers of
    /// this action running at once (within the worker's concurrency).
    ///
    /// ```
    /// use taskq::worker::{Outcome, TaskContext, Worker, WorkerConfig};
    ///
    /// # fn example(queue: taskq::Queue) -> Result<(), taskq::Error> {
    /// let mut worker = Worker::new(queue, WorkerConfig { concurrency: 20, ..WorkerConfig::default() });
    /// // At most two calls to the slow partner API at once; emails use the rest.
    /// worker.handle_with_limit("partner-sync", 2, |id: u64, _ctx: TaskContext| async move {
    ///     println!("syncing {id}");
    ///     Ok::<_, String>(Outcome::complete())
    /// })?;
    /// worker.handle("email", |to: String, _ctx: TaskContext| async move {
    ///     println!("mailing {to}");
    ///     Ok::<_, String>(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn handle_with_limit<T, H, Fut, R, E>(
        &mut self,
        action: &str,
        limit: usize,
        handler: H,
    ) -> Result<&mut Self>
    where
        T: DeserializeOwned + Send + 'static,
        H: Fn(T, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
        R: Into<Outcome>,
        E: std::fmt::Display,
    {
        if limit == 0 || limit > Semaphore::MAX_PERMITS {
            return Err(Error::invalid("limit", "must be at least 1"));
        }
        self.register(action, Some(limit), Arc::new(TypedHandler::new(handler)))
    }

    /// Like [`handle`](Worker::handle), for payloads in an encoding of
    /// your own: the handler receives the raw payload bytes. `limit`, if
    /// set, caps the handlers of this action running at once.
    pub fn handle_raw<H, Fut, R, E>(
        &mut self,
        action: &str,
        limit: Option<usize>,
        handler: H,
    ) -> Result<&mut Self>
    where
        H: Fn(Vec<u8>, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
        R: Into<Outcome>,
        E: std::fmt::Display,
    {
        if limit == Some(0) {
            return Err(Error::invalid("limit", "must be at least 1"));
        }
        self.register(action, limit, Arc::new(RawHandler::new(handler)))
    }

    fn register(
        &mut self,
        action: &str,
        limit: Option<usize>,
        handler: Arc<dyn ErasedHandler>,
    ) -> Result<&mut Self> {
        validate_action(action)?;
        if self.registrations.iter().any(|r| r.action == action) {
            return Err(Error::invalid(
                "action",
                format!("{action:?} already has a handler"),
            ));
        }
        self.registrations.push(Registration {
            action: action.to_owned(),
            handler,
            limit: limit.map(|n| Arc::new(Semaphore::new(n))),
            capacity: limit.map_or(self.config.concurrency, |n| n.min(self.config.concurrency)),
        });
        Ok(self)
    }

    /// Declares a periodic task, stored when the worker starts (see
    /// [`Schedules::upsert`](crate::Schedules::upsert): declaring it in
    /// every process is safe). Any running worker enqueues the ticks of
    /// every stored schedule, whether or not it declared it or handles its
    /// action; an invalid schedule is refused here.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskq::worker::{TaskContext, Worker, WorkerConfig};
    /// use taskq::Schedule;
    ///
    /// # fn example(queue: taskq::Queue) -> Result<(), taskq::Error> {
    /// let mut worker = Worker::new(queue, WorkerConfig::default());
    /// worker.schedule(Schedule::cron("nightly", "cleanup", "0 3 * * *").in_zone("America/New_York"))?;
    /// worker.handle("cleanup", |_: serde_json::Value, ctx: TaskContext| async move {
    ///     println!("cleaning up for the tick of {:?}", ctx.task().not_before);
    ///     Ok::<_, String>(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn schedule(&mut self, schedule: Schedule) -> Result<&mut Self> {
        schedule.validate()?;
        if self.schedules.iter().any(|s| s.name == schedule.name) {
            return Err(Error::invalid(
                "schedule",
                format!("{:?} is declared twice", schedule.name),
            ));
        }
        self.schedules.push(schedule);
        Ok(self)
    }

    /// The worker's counters, live; keep the `Arc` to read them while the
    /// worker runs.
    pub fn metrics(&self) -> Arc<WorkerMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs until the process receives SIGINT (Ctrl-C) or SIGTERM, then
    /// shuts down gracefully (see [`run_until`](Worker::run_until)).
    pub async fn run(self) -> Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `shutdown` resolves, then stops claiming, lets running
    /// handlers finish for up to [`WorkerConfig::shutdown_timeout`], and
    /// cancels and releases what is left so that it runs again at once
    /// elsewhere. Returns when every handler is done.
    ///
    /// Claims that fail are tried again with a growing wait (a database
    /// that restarts, a busy file), except for errors no retry can fix
    /// ([`Error::is_permanent`]: a read-only or damaged database, a schema
    /// written by a newer taskq): then the worker shuts down the same way
    /// and returns that error.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        self.config.validate()?;
        if self.registrations.is_empty() {
            return Err(Error::invalid(
                "handlers",
                "the worker has no handler to run",
            ));
        }
        let actions: HashSet<&str> = self
            .registrations
            .iter()
            .map(|r| r.action.as_str())
            .collect();
        tracing::info!(
            ?actions,
            concurrency = self.config.concurrency,
            "taskq worker starting"
        );
        for schedule in self.schedules {
            self.queue.schedules().upsert(schedule).await?;
        }
        self.queue.ensure_listening();
        let shared = Arc::new(Shared::new(
            self.queue,
            self.config,
            self.metrics,
            actions.iter().copied(),
        ));
        let dispatchers: Vec<_> = self
            .registrations
            .into_iter()
            .map(|registration| tokio::spawn(dispatch::dispatch(Arc::clone(&shared), registration)))
            .collect();
        let history = tokio::spawn(record_history(Arc::clone(&shared)));
        let scheduler = shared
            .config
            .run_schedules
            .then(|| tokio::spawn(scheduler::run(Arc::clone(&shared))));
        let retention = tokio::spawn(retention::run(Arc::clone(&shared)));

        tokio::select! {
            () = shutdown => tracing::info!("taskq worker shutting down"),
            () = shared.failed.cancelled() => {
                tracing::error!("taskq worker shutting down: the database cannot be used (see the error above)");
            }
        }
        shared.stop_claiming.cancel();
        if let Some(scheduler) = scheduler {
            let _ = scheduler.await;
        }
        let _ = retention.await;
        for dispatcher in dispatchers {
            let _ = dispatcher.await;
        }
        shared.runners.close();
        if tokio::time::timeout(shared.config.shutdown_timeout, shared.runners.wait())
            .await
            .is_err()
        {
            tracing::warn!("taskq worker: handlers still running after the shutdown timeout; cancelling and releasing them");
            shared.hard_stop.cancel();
            shared.runners.wait().await;
        }
        history.abort();
        // What the last runs counted, unless the database cannot take it
        // soon: a stopping worker does not wait long for a chart.
        let last = shared.meters.take(std::time::SystemTime::now());
        let recorded = shared.queue.record_throughput(last);
        if tokio::time::timeout(Duration::from_secs(2), recorded)
            .await
            .map_or(true, |done| done.is_err())
        {
            tracing::debug!("taskq worker: the last throughput counts were not recorded");
        }
        tracing::info!("taskq worker stopped");
        let fatal = shared
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        fatal.map_or(Ok(()), Err)
    }
}

/// How often a worker adds what it counted to the throughput history.
const HISTORY_EVERY: Duration = Duration::from_secs(10);

/// Adds the worker's counts to the throughput history every
/// [`HISTORY_EVERY`], one statement each time; counts that could not be
/// recorded are kept for the next time.
async fn record_history(shared: Arc<Shared>) {
    let mut ticks = tokio::time::interval(HISTORY_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let rows = shared.meters.take(std::time::SystemTime::now());
        if rows.is_empty() {
            continue;
        }
        if let Err(error) = shared.queue.record_throughput(rows.clone()).await {
            tracing::debug!(%error, "could not record the throughput counts; keeping them");
            shared.meters.give_back(rows);
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM: what [`Worker::run`] stops
/// on, for programs that stop other things the same way.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
