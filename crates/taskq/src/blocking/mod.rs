//! A blocking facade for synchronous programs: the same queue, with calls
//! that wait instead of returning futures.
//!
//! ```
//! use taskq::blocking::Queue;
//!
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("jobs.db");
//! let queue = Queue::open_sqlite(&path)?;
//! queue.enqueue("resize", &"cat.png")?;
//! if let Some(lease) = queue.claim("resize")? {
//!     let file: String = lease.payload_json()?;
//!     assert_eq!(file, "cat.png");
//!     lease.complete()?;
//! }
//! # Ok::<(), taskq::Error>(())
//! ```
//!
//! [`Worker`] runs synchronous handlers, each on a thread of its own.
//!
//! These calls must not be made from inside an async runtime (they would
//! block it); there they return [`Error::InvalidInput`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::runtime::Runtime;

use crate::bulk::RetriedMany;
use crate::control::CancelledMany;
use crate::error::{DatabaseError, DatabaseErrorKind, Error, Result};
use crate::limits::{LimitInfo, Limits};
use crate::names::TaskId;
use crate::options::{EnqueueOptions, ListOptions};
use crate::schedule::{Schedule, ScheduleInfo, Upserted};
use crate::schedules::Ticked;
use crate::state::{CancelOutcome, State};
use crate::task::{ActionStats, NewTask, Task};
use crate::throughput::Throughput;
use crate::unique::{Enqueued, RetryKey};
use crate::workflow::{Links, Workflow, WorkflowEnqueued};

mod lease;
mod worker;

pub use lease::Lease;
pub use worker::Worker;

/// A [`crate::Queue`] for synchronous code. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    queue: crate::Queue,
    runtime: Arc<BlockingRuntime>,
}

/// The runtime that the blocking calls wait on: one thread of its own,
/// which also runs the backend's background work between calls (the
/// PostgreSQL listener, completer and wake-up sender), with I/O and time
/// enabled.
#[derive(Debug)]
struct BlockingRuntime(Option<Runtime>);

impl std::ops::Deref for BlockingRuntime {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        self.0.as_ref().expect("the runtime lives until dropped")
    }
}

impl Drop for BlockingRuntime {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which tokio forbids
        // inside another runtime: there, let them end in the background.
        if let Some(runtime) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            }
        }
    }
}

fn inside_async() -> Error {
    Error::invalid(
        "runtime",
        "the blocking API was called inside an async runtime; use taskq::Queue there",
    )
}

fn new_runtime() -> Result<Arc<BlockingRuntime>> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(inside_async());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("taskq-blocking")
        .enable_all()
        .build()
        .map(|runtime| Arc::new(BlockingRuntime(Some(runtime))))
        .map_err(|e| {
            Error::Database(DatabaseError::new(
                DatabaseErrorKind::Other,
                format!("could not start the blocking runtime: {e}"),
                None,
            ))
        })
}

fn block_on<F: Future>(runtime: &Runtime, future: F) -> Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(inside_async());
    }
    // This thread waits for the future: an uncontended SQLite write may
    // run on it rather than be handed to the writer thread and back.
    let _writes = crate::backend::CallerWrites::allow();
    Ok(runtime.block_on(future))
}

impl Queue {
    /// Wraps an async queue. Its background work (PostgreSQL's listener
    /// and batched completions) keeps running on the runtime it was
    /// created in, which must keep running.
    pub fn new(queue: crate::Queue) -> Result<Self> {
        Ok(Queue {
            queue,
            runtime: new_runtime()?,
        })
    }

    /// See [`crate::Queue::connect`].
    pub fn connect(url: &str) -> Result<Self> {
        let runtime = new_runtime()?;
        let queue = block_on(&runtime, crate::Queue::connect(url))??;
        Ok(Queue { queue, runtime })
    }

    /// See [`crate::Queue::connect_with`].
    pub fn connect_with(url: &str, options: crate::ConnectOptions) -> Result<Self> {
        let runtime = new_runtime()?;
        let queue = block_on(&runtime, crate::Queue::connect_with(url, options))??;
        Ok(Queue { queue, runtime })
    }

    /// See [`crate::Queue::open_sqlite`].
    #[cfg(feature = "sqlite")]
    pub fn open_sqlite(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let runtime = new_runtime()?;
        let queue = block_on(&runtime, crate::Queue::open_sqlite(path))??;
        Ok(Queue { queue, runtime })
    }

    fn block<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        block_on(&self.runtime, future)?
    }

    /// The schedules of periodic tasks; see [`crate::Queue::schedules`].
    pub fn schedules(&self) -> Schedules<'_> {
        Schedules { queue: self }
    }

    /// The async queue underneath.
    pub fn as_async(&self) -> &crate::Queue {
        &self.queue
    }

    /// See [`crate::Queue::flush`].
    pub fn flush(&self) -> Result<()> {
        self.block(self.queue.flush())
    }

    /// See [`crate::Queue::migrate`].
    pub fn migrate(&self) -> Result<()> {
        self.block(self.queue.migrate())
    }

    /// See [`crate::Queue::enqueue`].
    pub fn enqueue<T: Serialize + ?Sized>(&self, action: &str, payload: &T) -> Result<TaskId> {
        self.block(self.queue.enqueue(action, payload))
    }

    /// See [`crate::Queue::enqueue_with`].
    pub fn enqueue_with<T: Serialize + ?Sized>(
        &self,
        action: &str,
        payload: &T,
        options: EnqueueOptions,
    ) -> Result<TaskId> {
        self.block(self.queue.enqueue_with(action, payload, options))
    }

    /// See [`crate::Queue::enqueue_task`].
    pub fn enqueue_task(&self, task: NewTask) -> Result<Enqueued> {
        self.block(self.queue.enqueue_task(task))
    }

    /// See [`crate::Queue::enqueue_many`].
    pub fn enqueue_many(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        self.block(self.queue.enqueue_many(tasks))
    }

    /// See [`crate::Queue::enqueue_workflow`].
    pub fn enqueue_workflow(&self, workflow: Workflow) -> Result<WorkflowEnqueued> {
        self.block(self.queue.enqueue_workflow(workflow))
    }

    /// See [`crate::Queue::links`].
    pub fn links(&self, id: TaskId) -> Result<Links> {
        self.block(self.queue.links(id))
    }

    /// See [`crate::Queue::retry_with_dependents`].
    pub fn retry_with_dependents(&self, id: TaskId) -> Result<()> {
        self.block(self.queue.retry_with_dependents(id))
    }

    /// See [`crate::Queue::claim`].
    pub fn claim(&self, action: &str) -> Result<Option<Lease>> {
        let lease = self.block(self.queue.claim(action))?;
        Ok(lease.map(|lease| self.wrap(lease)))
    }

    /// See [`crate::Queue::claim_many`].
    pub fn claim_many(&self, action: &str, limit: u32) -> Result<Vec<Lease>> {
        let leases = self.block(self.queue.claim_many(action, limit))?;
        Ok(leases.into_iter().map(|lease| self.wrap(lease)).collect())
    }

    fn wrap(&self, lease: crate::Lease) -> Lease {
        Lease {
            lease,
            runtime: Arc::clone(&self.runtime),
        }
    }

    /// See [`crate::Queue::len`].
    pub fn len(&self, action: &str) -> Result<u64> {
        self.block(self.queue.len(action))
    }

    /// See [`crate::Queue::is_empty`].
    pub fn is_empty(&self, action: &str) -> Result<bool> {
        self.block(self.queue.is_empty(action))
    }

    /// See [`crate::Queue::stats`].
    pub fn stats(&self) -> Result<Vec<ActionStats>> {
        self.block(self.queue.stats())
    }

    /// See [`crate::Queue::get`].
    pub fn get(&self, id: TaskId) -> Result<Option<Task>> {
        self.block(self.queue.get(id))
    }

    /// See [`crate::Queue::list`].
    pub fn list(&self, options: &ListOptions) -> Result<Vec<Task>> {
        self.block(self.queue.list(options))
    }

    /// See [`crate::Queue::retry`].
    pub fn retry(&self, id: TaskId) -> Result<()> {
        self.block(self.queue.retry(id))
    }

    /// See [`crate::Queue::retry_with`].
    pub fn retry_with(&self, id: TaskId, key: RetryKey) -> Result<()> {
        self.block(self.queue.retry_with(id, key))
    }

    /// See [`crate::Queue::cancel`].
    pub fn cancel(&self, id: TaskId) -> Result<CancelOutcome> {
        self.block(self.queue.cancel(id))
    }

    /// See [`crate::Queue::cancel_key`].
    pub fn cancel_key(&self, action: &str, key: &str) -> Result<Option<(TaskId, CancelOutcome)>> {
        self.block(self.queue.cancel_key(action, key))
    }

    /// See [`crate::Queue::cancel_many`].
    pub fn cancel_many(&self, action: &str, state: State) -> Result<CancelledMany> {
        self.block(self.queue.cancel_many(action, state))
    }

    /// See [`crate::Queue::pause`].
    pub fn pause(&self, action: &str) -> Result<bool> {
        self.block(self.queue.pause(action))
    }

    /// See [`crate::Queue::resume`].
    pub fn resume(&self, action: &str) -> Result<bool> {
        self.block(self.queue.resume(action))
    }

    /// See [`crate::Queue::paused`].
    pub fn paused(&self) -> Result<Vec<String>> {
        self.block(self.queue.paused())
    }

    /// See [`crate::Queue::set_limits`].
    pub fn set_limits(&self, action: &str, limits: Limits) -> Result<()> {
        self.block(self.queue.set_limits(action, limits))
    }

    /// See [`crate::Queue::clear_limits`].
    pub fn clear_limits(&self, action: &str) -> Result<bool> {
        self.block(self.queue.clear_limits(action))
    }

    /// See [`crate::Queue::limits`].
    pub fn limits(&self) -> Result<Vec<LimitInfo>> {
        self.block(self.queue.limits())
    }

    /// See [`crate::Queue::delete`].
    pub fn delete(&self, id: TaskId) -> Result<()> {
        self.block(self.queue.delete(id))
    }

    /// See [`crate::Queue::purge`].
    pub fn purge(&self, state: State, older_than: Duration) -> Result<u64> {
        self.block(self.queue.purge(state, older_than))
    }

    /// See [`crate::Queue::purge_batch`].
    pub fn purge_batch(&self, state: State, older_than: Duration, limit: u32) -> Result<u64> {
        self.block(self.queue.purge_batch(state, older_than, limit))
    }

    /// See [`crate::Queue::requeue_expired`].
    pub fn requeue_expired(&self) -> Result<u64> {
        self.block(self.queue.requeue_expired())
    }

    /// See [`crate::Queue::retry_matching`].
    pub fn retry_matching(&self, filter: &ListOptions) -> Result<RetriedMany> {
        self.block(self.queue.retry_matching(filter))
    }

    /// See [`crate::Queue::delete_matching`].
    pub fn delete_matching(&self, filter: &ListOptions) -> Result<Vec<TaskId>> {
        self.block(self.queue.delete_matching(filter))
    }

    /// See [`crate::Queue::throughput`].
    pub fn throughput(&self, last: Duration) -> Result<Vec<Throughput>> {
        self.block(self.queue.throughput(last))
    }

    /// See [`crate::Queue::record_throughput`].
    pub fn record_throughput(&self, rows: Vec<Throughput>) -> Result<()> {
        self.block(self.queue.record_throughput(rows))
    }
}

/// The schedules of a blocking queue's database ([`Queue::schedules`]);
/// each call is its [`crate::Schedules`] twin.
///
/// ```
/// use taskq::blocking::Queue;
/// use taskq::{Schedule, Upserted};
///
/// # let dir = tempfile::tempdir().unwrap();
/// let queue = Queue::open_sqlite(dir.path().join("jobs.db"))?;
/// let nightly = Schedule::cron("nightly", "cleanup", "0 3 * * *").in_zone("Europe/Berlin");
/// assert_eq!(queue.schedules().upsert(nightly)?, Upserted::Created);
/// queue.schedules().run_now("nightly")?;
/// assert_eq!(queue.len("cleanup")?, 1);
/// # Ok::<(), taskq::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Schedules<'a> {
    queue: &'a Queue,
}

impl Schedules<'_> {
    fn inner(&self) -> crate::Schedules<'_> {
        self.queue.queue.schedules()
    }

    /// See [`crate::Schedules::upsert`].
    pub fn upsert(&self, schedule: Schedule) -> Result<Upserted> {
        self.queue.block(self.inner().upsert(schedule))
    }

    /// See [`crate::Schedules::list`].
    pub fn list(&self) -> Result<Vec<ScheduleInfo>> {
        self.queue.block(self.inner().list())
    }

    /// See [`crate::Schedules::get`].
    pub fn get(&self, name: &str) -> Result<Option<ScheduleInfo>> {
        self.queue.block(self.inner().get(name))
    }

    /// See [`crate::Schedules::remove`].
    pub fn remove(&self, name: &str) -> Result<()> {
        self.queue.block(self.inner().remove(name))
    }

    /// See [`crate::Schedules::pause`].
    pub fn pause(&self, name: &str) -> Result<bool> {
        self.queue.block(self.inner().pause(name))
    }

    /// See [`crate::Schedules::resume`].
    pub fn resume(&self, name: &str) -> Result<bool> {
        self.queue.block(self.inner().resume(name))
    }

    /// See [`crate::Schedules::run_now`].
    pub fn run_now(&self, name: &str) -> Result<Enqueued> {
        self.queue.block(self.inner().run_now(name))
    }

    /// See [`crate::Schedules::tick`].
    pub fn tick(&self) -> Result<Ticked> {
        self.queue.block(self.inner().tick())
    }
}
