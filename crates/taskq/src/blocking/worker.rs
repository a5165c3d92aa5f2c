//! The blocking facade's worker: synchronous handlers on the blocking
//! pool.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{block_on, BlockingRuntime, Queue};
use crate::error::Result;
use crate::schedule::Schedule;
use crate::worker::{Outcome, TaskContext, WorkerConfig, WorkerMetrics};

/// A [`crate::worker::Worker`] for synchronous handlers: each runs on a
/// thread of the blocking pool, so it may block as it likes.
///
/// ```
/// use taskq::blocking::{Queue, Worker};
/// use taskq::worker::{CancellationToken, TaskContext, WorkerConfig};
///
/// # let dir = tempfile::tempdir().unwrap();
/// let queue = Queue::open_sqlite(dir.path().join("jobs.db"))?;
/// queue.enqueue("print", &"hello")?;
///
/// let stop = CancellationToken::new();
/// let mut worker = Worker::new(&queue, WorkerConfig::default());
/// let stopper = stop.clone();
/// worker.handle("print", move |text: String, _ctx: TaskContext| {
///     println!("{text}");
///     stopper.cancel(); // stop after the first task, for this example
///     Ok::<_, String>(())
/// })?;
/// worker.run_until(stop)?; // or worker.run(), until SIGINT or SIGTERM
/// assert_eq!(queue.len("print")?, 0);
/// # Ok::<(), taskq::Error>(())
/// ```
pub struct Worker {
    worker: crate::worker::Worker,
    runtime: Arc<BlockingRuntime>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.worker.fmt(f)
    }
}

impl Worker {
    /// A worker for `queue`, with no handlers yet.
    pub fn new(queue: &Queue, config: WorkerConfig) -> Self {
        Worker {
            worker: crate::worker::Worker::new(queue.queue.clone(), config),
            runtime: Arc::clone(&queue.runtime),
        }
    }

    /// Registers a synchronous `handler` for `action`; see
    /// [`crate::worker::Worker::handle`].
    pub fn handle<T, H, R, E>(&mut self, action: &str, handler: H) -> Result<&mut Self>
    where
        T: DeserializeOwned + Send + 'static,
        H: Fn(T, TaskContext) -> std::result::Result<R, E> + Send + Sync + 'static,
        R: Into<Outcome> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.worker
            .handle(action, move |payload: T, context: TaskContext| {
                let handler = Arc::clone(&handler);
                async move {
                    let run = tokio::task::spawn_blocking(move || handler(payload, context));
                    match run.await {
                        Ok(result) => result.map(Into::into).map_err(|e| e.to_string()),
                        Err(error) => match error.try_into_panic() {
                            Ok(panic) => std::panic::resume_unwind(panic),
                            Err(error) => Err(error.to_string()),
                        },
                    }
                }
            })?;
        Ok(self)
    }

    /// Declares a periodic task, stored when the worker starts; see
    /// [`crate::worker::Worker::schedule`].
    pub fn schedule(&mut self, schedule: Schedule) -> Result<&mut Self> {
        self.worker.schedule(schedule)?;
        Ok(self)
    }

    /// The worker's live counters.
    pub fn metrics(&self) -> Arc<WorkerMetrics> {
        self.worker.metrics()
    }

    /// Runs until SIGINT or SIGTERM; see [`crate::worker::Worker::run`].
    pub fn run(self) -> Result<()> {
        block_on(&self.runtime, self.worker.run())?
    }

    /// Runs until `stop` is cancelled (from any thread); see
    /// [`crate::worker::Worker::run_until`].
    pub fn run_until(self, stop: crate::worker::CancellationToken) -> Result<()> {
        block_on(&self.runtime, self.worker.run_until(stop.cancelled_owned()))?
    }
}
