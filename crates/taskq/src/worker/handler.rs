//! What a handler receives and what it returns.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::names::TaskId;
use crate::queue::Queue;
use crate::result::TaskResult;
use crate::task::{NewTask, Task};
use crate::workflow::Link;

/// What a handler decided about its task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done: complete the task, enqueueing `follow_ups` in the same
    /// transaction (each records this task as its parent), and keep
    /// `result` with it if there is one.
    Complete {
        /// Tasks to enqueue if and only if the completion commits.
        follow_ups: Vec<NewTask>,
        /// What the handler returned: kept with the succeeded task (see
        /// [`TaskResult`]).
        result: Option<TaskResult>,
    },
    /// This try failed: record `reason` and retry after the backoff, or
    /// fail for good if it was the last try. A handler's `Err` means the
    /// same.
    Retry {
        /// Stored as the task's last error.
        reason: String,
    },
    /// Not now: run again after `delay`, without counting the try.
    Snooze {
        /// How long to wait.
        delay: Duration,
    },
    /// Fail for good now, whatever tries are left: no retry can help.
    Fail {
        /// Stored as the task's last error.
        reason: String,
    },
    /// End the task cancelled: it does not run again unless retried.
    Cancel {
        /// Stored as the task's last error.
        reason: String,
    },
}

impl Outcome {
    /// Complete the task.
    pub fn complete() -> Self {
        Outcome::Complete {
            follow_ups: Vec::new(),
            result: None,
        }
    }

    /// Complete the task and enqueue follow-ups atomically with it.
    pub fn follow_up(tasks: Vec<NewTask>) -> Self {
        Outcome::Complete {
            follow_ups: tasks,
            result: None,
        }
    }

    /// Complete the task and keep `result` (as JSON) with it: the task
    /// stays as succeeded, with the result, until retention removes it.
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) (field
    /// `result`) if it does not serialize or is larger than
    /// [`MAX_RESULT_LEN`](crate::MAX_RESULT_LEN); a handler that returns
    /// that error with `?` fails its try with it.
    ///
    /// ```
    /// use taskq::worker::{Outcome, TaskContext};
    ///
    /// async fn resize(file: String, _ctx: TaskContext) -> Result<Outcome, taskq::Error> {
    ///     let thumbnail = format!("small-{file}");
    ///     Outcome::complete_with_result(&serde_json::json!({ "thumbnail": thumbnail }))
    /// }
    /// ```
    pub fn complete_with_result<T: serde::Serialize + ?Sized>(result: &T) -> crate::Result<Self> {
        Ok(Outcome::Complete {
            follow_ups: Vec::new(),
            result: Some(TaskResult::json(result)?),
        })
    }

    /// This outcome with `result` kept with the task; only a completion
    /// keeps one (any other outcome is returned as it is).
    pub fn with_result(self, result: TaskResult) -> Self {
        match self {
            Outcome::Complete { follow_ups, .. } => Outcome::Complete {
                follow_ups,
                result: Some(result),
            },
            other => other,
        }
    }

    /// Retry after the backoff (counts as a failed try).
    pub fn retry(reason: impl std::fmt::Display) -> Self {
        Outcome::Retry {
            reason: reason.to_string(),
        }
    }

    /// Run again after `delay` without counting the try.
    pub fn snooze(delay: Duration) -> Self {
        Outcome::Snooze { delay }
    }

    /// Fail for good.
    pub fn fail(reason: impl std::fmt::Display) -> Self {
        Outcome::Fail {
            reason: reason.to_string(),
        }
    }

    /// End cancelled (for a handler that heard its cancellation was asked
    /// for, or decides the work is no longer wanted).
    pub fn cancel(reason: impl std::fmt::Display) -> Self {
        Outcome::Cancel {
            reason: reason.to_string(),
        }
    }
}

impl From<()> for Outcome {
    fn from((): ()) -> Self {
        Outcome::complete()
    }
}

/// Why a handler was told to stop (see [`TaskContext::stop_reason`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The task's cancellation was asked for
    /// ([`Queue::cancel`](crate::Queue::cancel)): return soon. Returning
    /// anything but a completion ends the task cancelled; a completion
    /// still stands.
    Cancelled,
    /// The lease was lost: another worker may run the task now, and this
    /// run's result will be discarded.
    LeaseLost,
    /// The worker is shutting down and its grace period is over: the task
    /// is given back to run again.
    Shutdown,
}

/// The token that tells a handler to stop, and why.
#[derive(Clone, Debug)]
pub(crate) struct Stop {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

impl Stop {
    pub(crate) fn new(token: CancellationToken) -> Self {
        Stop {
            token,
            reason: Arc::default(),
        }
    }

    /// Tells the handler to stop for `reason` (the first reason given
    /// stays).
    pub(crate) fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Why the handler was told to stop, once it was.
    pub(crate) fn reason(&self) -> Option<StopReason> {
        if !self.token.is_cancelled() {
            return None;
        }
        Some(self.reason.get().copied().unwrap_or(StopReason::Shutdown))
    }
}

/// Everything about the running task except its payload, and the token
/// that tells the handler to stop.
#[derive(Clone, Debug)]
pub struct TaskContext {
    task: Arc<Task>,
    stop: Stop,
    queue: Queue,
}

impl TaskContext {
    pub(crate) fn new(task: Arc<Task>, stop: Stop, queue: Queue) -> Self {
        TaskContext { task, stop, queue }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.task.id
    }

    /// The task's action.
    pub fn action(&self) -> &str {
        &self.task.action
    }

    /// Which try this is, from 1.
    pub fn tries(&self) -> i32 {
        self.task.tries
    }

    /// How many tries the task gets (-1: forever).
    pub fn max_tries(&self) -> i32 {
        self.task.max_tries
    }

    /// Whether a failure now would fail the task for good.
    pub fn is_last_try(&self) -> bool {
        self.task.is_last_try()
    }

    /// The task whose completion enqueued this one.
    pub fn parent(&self) -> Option<TaskId> {
        self.task.parent
    }

    /// When the task was enqueued.
    pub fn created_at(&self) -> SystemTime {
        self.task.created_at
    }

    /// The whole task as claimed, raw payload included.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Cancelled when the handler should stop: the task's cancellation
    /// was asked for, the lease was lost (another worker may now run the
    /// task, and this result will be discarded) or the worker is shutting
    /// down past its grace period. [`stop_reason`](Self::stop_reason)
    /// tells which.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.stop.token
    }

    /// Whether the handler has been told to stop.
    pub fn is_cancelled(&self) -> bool {
        self.stop.token.is_cancelled()
    }

    /// Resolves when the handler is told to stop.
    pub async fn cancelled(&self) {
        self.stop.token.cancelled().await
    }

    /// Why the handler was told to stop; `None` while it was not.
    ///
    /// ```
    /// use taskq::worker::{Outcome, StopReason, TaskContext};
    ///
    /// async fn export(rows: Vec<u64>, ctx: TaskContext) -> Result<Outcome, String> {
    ///     for row in rows {
    ///         if ctx.stop_reason() == Some(StopReason::Cancelled) {
    ///             return Ok(Outcome::cancel("stopped on request"));
    ///         }
    ///         println!("exporting {row}");
    ///     }
    ///     Ok(Outcome::complete())
    /// }
    /// ```
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop.reason()
    }

    /// The tasks this one depends on, by id, each with how it ended for
    /// this task (succeeded, failed or cancelled) and its state now
    /// (`None` once it no longer exists). A task enqueued with
    /// [`run_if_dependencies_fail`](crate::NewTask::run_if_dependencies_fail)
    /// sees here which of them failed.
    pub async fn dependencies(&self) -> Result<Vec<Link>> {
        Ok(self.queue.links(self.task.id).await?.dependencies)
    }

    /// The result of task `id` (a dependency, say), decoded as `T`:
    /// `None` if it has none, or no longer exists (a dependency that
    /// completed without a result is not kept). A succeeded task with
    /// dependents that have not finished is kept until they have, so its
    /// result is there for them.
    /// [`Error::ResultDecode`](crate::Error::ResultDecode) if it is not
    /// a `T`.
    ///
    /// ```
    /// use taskq::worker::{Outcome, TaskContext};
    ///
    /// async fn album(_: (), ctx: TaskContext) -> Result<Outcome, taskq::Error> {
    ///     let mut thumbnails = Vec::new();
    ///     for dependency in ctx.dependencies().await? {
    ///         if let Some(path) = ctx.result_of::<String>(dependency.id).await? {
    ///             thumbnails.push(path);
    ///         }
    ///     }
    ///     Outcome::complete_with_result(&thumbnails)
    /// }
    /// ```
    pub async fn result_of<T: DeserializeOwned>(&self, id: TaskId) -> Result<Option<T>> {
        match self.queue.get(id).await? {
            Some(task) => task.result_json(),
            None => Ok(None),
        }
    }
}

/// A handler's result before it is applied to the lease.
pub(crate) type HandlerResult = Result<Outcome, String>;

type BoxFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;

/// A handler with its payload type erased: it decodes the payload itself.
pub(crate) trait ErasedHandler: Send + Sync {
    /// `Err` from the outer result: the payload could not be decoded.
    fn call(&self, payload: &[u8], context: TaskContext) -> Result<BoxFuture, String>;
}

pub(crate) struct TypedHandler<T, H> {
    handler: H,
    _payload: std::marker::PhantomData<fn() -> T>,
}

impl<T, H> TypedHandler<T, H> {
    pub(crate) fn new(handler: H) -> Self {
        TypedHandler {
            handler,
            _payload: std::marker::PhantomData,
        }
    }
}

impl<T, H, Fut, R, E> ErasedHandler for TypedHandler<T, H>
where
    T: DeserializeOwned + Send + 'static,
    H: Fn(T, TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Into<Outcome>,
    E: std::fmt::Display,
{
    fn call(&self, payload: &[u8], context: TaskContext) -> Result<BoxFuture, String> {
        let payload: T = serde_json::from_slice(payload)
            .map_err(|e| format!("the payload could not be decoded: {e}"))?;
        let future = (self.handler)(payload, context);
        Ok(Box::pin(async move {
            match future.await {
                Ok(outcome) => Ok(outcome.into()),
                Err(error) => Err(error.to_string()),
            }
        }))
    }
}

/// A handler that takes the raw payload bytes, for payloads that are not
/// JSON.
pub(crate) struct RawHandler<H> {
    handler: H,
}

impl<H> RawHandler<H> {
    pub(crate) fn new(handler: H) -> Self {
        RawHandler { handler }
    }
}

impl<H, Fut, R, E> ErasedHandler for RawHandler<H>
where
    H: Fn(Vec<u8>, TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Into<Outcome>,
    E: std::fmt::Display,
{
    fn call(&self, payload: &[u8], context: TaskContext) -> Result<BoxFuture, String> {
        let future = (self.handler)(payload.to_vec(), context);
        Ok(Box::pin(async move {
            match future.await {
                Ok(outcome) => Ok(outcome.into()),
                Err(error) => Err(error.to_string()),
            }
        }))
    }
}
