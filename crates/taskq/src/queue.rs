//! The front door: enqueue, claim, count and administer tasks.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::attempt::WorkerId;
use crate::backend::{Backend, ExpiryBackoff, Held, Waiters};
use crate::error::{Error, Result};
use crate::handoff::{HandOffs, Offer};
use crate::lease::Lease;
use crate::names::{validate_action, TaskId};
use crate::options::{validate_duration, ConnectOptions, EnqueueOptions, ListOptions, QueueConfig};
use crate::registry::{self, Shared};
use crate::state::State;
use crate::task::{due_actions, ActionStats, NewTask, Task};
use crate::unique::{Enqueued, RetryKey};
use crate::wakeup::Wakeups;

/// The most tasks one [`Queue::claim_many`] call may take.
pub const MAX_CLAIM_BATCH: u32 = 1000;

/// The most tasks one [`Queue::purge_batch`] call may delete.
pub const MAX_PURGE_BATCH: u32 = 10_000;

/// Checks what a purge is given: a finished state, a duration that fits.
fn validate_purge(state: State, older_than: Duration) -> Result<()> {
    if !state.is_finished() {
        return Err(Error::invalid(
            "state",
            format!("only failed, succeeded or cancelled tasks can be purged, not {state} ones"),
        ));
    }
    validate_duration("older_than", older_than, true)
}

/// A task queue on some backend. Cheap to clone: clones share the backend.
///
/// Every method validates its input, then makes one atomic step in the
/// database. Writes return only after they are committed.
#[derive(Clone, Debug)]
pub struct Queue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Box<dyn Backend>,
    config: QueueConfig,
    /// Wake-ups, and idle workers' offers to take a task of their action
    /// claimed: shared with the other queues of this process on the same
    /// database.
    shared: Arc<Shared>,
    /// Set once the backend was asked to deliver other processes'
    /// wake-ups, when the first waiter came.
    listening: OnceLock<()>,
    /// Who claims, for claims made outside a worker: this process.
    claimer: WorkerId,
}

impl Queue {
    /// A queue on `backend` with the given settings.
    pub fn new(backend: impl Backend, config: QueueConfig) -> Result<Self> {
        Self::from_backend(Box::new(backend), config)
    }

    fn from_backend(backend: Box<dyn Backend>, config: QueueConfig) -> Result<Self> {
        config.validate()?;
        let shared = registry::shared(backend.location());
        Ok(Queue {
            inner: Arc::new(Inner {
                backend,
                config,
                shared,
                listening: OnceLock::new(),
                claimer: WorkerId::this_process(None),
            }),
        })
    }

    /// Opens a queue from a database URL, with default settings:
    ///
    /// - `sqlite://PATH` or `sqlite:PATH`, or a plain file path: an
    ///   embedded SQLite file, created and migrated if needed.
    ///
    /// - `postgres://…` or `postgresql://…` (with the `postgres` feature):
    ///   a PostgreSQL database, its `taskq` schema created and migrated if
    ///   needed. A `schema=NAME` query parameter picks another schema.
    ///
    /// A URL of any other scheme is refused with [`Error::InvalidInput`].
    /// Passwords in URLs never appear in errors or logs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    /// // url is "sqlite://jobs.db", or "postgres://app:secret@db.internal/app?schema=jobs"
    /// let queue = taskq::Queue::connect(&url).await?;
    /// queue.enqueue("email", &"ada@example.com").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    /// Opens a queue from a database URL like [`connect`](Queue::connect),
    /// with options: the queue's settings, and whether to create what is
    /// missing ([`ConnectOptions::create`] `false` opens only what exists
    /// and changes nothing, for tools that only look).
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Self> {
        options.config.validate()?;
        let backend = crate::backend::connect(url, options.create).await?;
        Self::from_backend(backend, options.config)
    }

    /// Opens (creating and migrating if needed) a queue in the SQLite file
    /// at `path`, with default settings.
    #[cfg(feature = "sqlite")]
    pub async fn open_sqlite(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let backend = crate::backend::open_sqlite(path.as_ref()).await?;
        Self::from_backend(backend, QueueConfig::default())
    }

    /// The backend, for calls the queue does not wrap (see
    /// [`backend`](crate::backend): that seam may change between minor
    /// versions).
    pub fn backend(&self) -> &dyn Backend {
        &*self.inner.backend
    }

    /// The queue's settings.
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// The wake-up signals of this queue, its clones and the other queues
    /// of this process on the same database.
    pub(crate) fn wakeups(&self) -> &Arc<Wakeups> {
        &self.inner.shared.wakeups
    }

    /// The idle workers' offers to take tasks handed over (shared like
    /// the wake-ups).
    pub(crate) fn hand_offs(&self) -> &HandOffs {
        &self.inner.shared.hand_offs
    }

    /// Whether idle workers of this queue hear of tasks that other
    /// processes enqueue within milliseconds (PostgreSQL's `LISTEN`,
    /// SQLite's watch of the file), rather than at their next poll.
    pub fn supports_notify(&self) -> bool {
        self.backend().supports_notify()
    }

    /// Asks the backend, once, to deliver other processes' wake-ups.
    pub(crate) fn ensure_listening(&self) {
        self.inner.listening.get_or_init(|| {
            let waiters: Arc<dyn Waiters> = Arc::clone(&self.inner.shared.wakeups) as _;
            self.backend().listen(waiters)
        });
    }

    /// Signals waiting workers that tasks of these actions are ready.
    pub(crate) fn wake(&self, actions: &[String]) {
        for action in actions {
            self.inner.shared.wakeups.wake(action);
        }
    }

    /// Sends what the queue still holds back for the database, such as
    /// wake-ups for other processes' workers that wait a few milliseconds
    /// to be sent together, and waits until they are sent. Call it before
    /// the process exits right after an enqueue; the queue stays usable.
    pub async fn flush(&self) -> Result<()> {
        self.backend().flush().await
    }

    /// Creates or upgrades the schema. Safe to call from several processes
    /// at once and when already up to date; refuses a database migrated by
    /// a newer taskq with [`Error::SchemaTooNew`].
    pub async fn migrate(&self) -> Result<()> {
        self.backend().migrate().await
    }

    /// Enqueues `payload`, encoded as JSON, for `action` with default
    /// options. Returns the new task's id once it is committed.
    pub async fn enqueue<T: Serialize + ?Sized>(
        &self,
        action: &str,
        payload: &T,
    ) -> Result<TaskId> {
        Ok(self.enqueue_task(NewTask::json(action, payload)?).await?.id)
    }

    /// Enqueues `payload`, encoded as JSON, with the given options.
    /// Returns the new task's id or, when its unique key is taken, the id
    /// of the task that holds it ([`enqueue_task`](Queue::enqueue_task)
    /// says which).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// use std::time::Duration;
    /// use taskq::EnqueueOptions;
    ///
    /// let options = EnqueueOptions { max_tries: 3, ..EnqueueOptions::default() };
    /// let id = queue.enqueue_with("report", &"2026-11", options).await?;
    /// assert_eq!(queue.get(id).await?.unwrap().max_tries, 3);
    /// // The same with the builder of a task:
    /// let later = taskq::NewTask::json("report", &"2026-12")?.delay(Duration::from_secs(60));
    /// queue.enqueue_task(later).await?;
    /// assert_eq!(queue.len("report").await?, 1, "the delayed one is not ready yet");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn enqueue_with<T: Serialize + ?Sized>(
        &self,
        action: &str,
        payload: &T,
        options: EnqueueOptions,
    ) -> Result<TaskId> {
        let task = NewTask::json(action, payload)?.options(options);
        Ok(self.enqueue_task(task).await?.id)
    }

    /// Enqueues one task (typed or raw payload, any options). Returns its
    /// id, and whether it was a duplicate: a task with a
    /// [unique key](NewTask::unique_key) that another task of its action
    /// holds is not added, and the id is that task's.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// use taskq::NewTask;
    ///
    /// let first = queue.enqueue_task(NewTask::json("sync", &42)?.unique_key("customer:42")).await?;
    /// let again = queue.enqueue_task(NewTask::json("sync", &42)?.unique_key("customer:42")).await?;
    /// assert!(!first.duplicate && again.duplicate);
    /// assert_eq!(again.id, first.id);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn enqueue_task(&self, task: NewTask) -> Result<Enqueued> {
        let ids = self.enqueue_many(vec![task]).await?;
        Ok(ids[0])
    }

    /// Enqueues many tasks in one transaction: all of them or, on any
    /// error, none. Says of each, in order, what became of it (see
    /// [`enqueue_task`](Queue::enqueue_task)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// use taskq::NewTask;
    ///
    /// let tasks = (1..=3).map(|n| NewTask::json("resize", &n)).collect::<Result<Vec<_>, _>>()?;
    /// let ids = queue.enqueue_many(tasks).await?;
    /// assert_eq!(ids.len(), 3);
    /// let bad = vec![NewTask::json("resize", &4)?, NewTask::json("", &5)?];
    /// assert!(queue.enqueue_many(bad).await.is_err());
    /// assert_eq!(queue.len("resize").await?, 3, "the bad batch left nothing");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn enqueue_many(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        tasks.iter().try_for_each(NewTask::validate)?;
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let due = due_actions(&tasks);
        if let [task] = tasks.as_slice() {
            let plain = task.options.unique.is_none()
                && task.options.concurrency_key.is_none()
                && task.options.depends_on.is_empty();
            if task.options.not_before.is_none() && plain {
                if let Some(offer) = self.inner.shared.hand_offs.take_offer(&task.action) {
                    return self.hand_off(tasks, offer).await;
                }
            }
        }
        let ids = self.backend().task_insert_many(tasks).await?;
        self.wake(&due);
        Ok(ids)
    }

    /// Enqueues one task due now while a worker of this process waits for
    /// its action: inserted already claimed when it is the oldest ready
    /// task of the action, and handed to that worker, which starts it
    /// without a claim of its own; otherwise queued as usual.
    async fn hand_off(&self, mut tasks: Vec<NewTask>, offer: Offer) -> Result<Vec<Enqueued>> {
        let task = tasks.remove(0);
        let action = task.action.clone();
        let inserted = self
            .backend()
            .task_insert_claimed(task, &offer.worker)
            .await;
        let (id, claimed) = match inserted {
            Ok(inserted) => inserted,
            Err(error) => {
                self.inner.shared.hand_offs.return_offer(&action, offer);
                return Err(error);
            }
        };
        match claimed {
            Some(task) => {
                crate::failpoint::hit("handed-over");
                if let Err(lease) = offer.sender.send(Lease::new(task, self.clone())) {
                    // The worker stopped waiting meanwhile: give it back.
                    if let Err(error) = lease.release().await {
                        tracing::warn!(%error, "could not give back a task no worker took; it runs after its lease expires");
                    }
                }
            }
            None => {
                self.inner.shared.hand_offs.return_offer(&action, offer);
                self.wake(std::slice::from_ref(&action));
            }
        }
        Ok(vec![id])
    }

    /// Claims the first ready task of `action` (by priority, then
    /// not-before time, then id) with an exclusive lease, or returns `None`
    /// when none is ready or the action is [paused](Queue::pause). A task whose lease expired is
    /// ready again; one whose lease expired on its last try fails instead.
    pub async fn claim(&self, action: &str) -> Result<Option<Lease>> {
        Ok(self.claim_many(action, 1).await?.pop())
    }

    /// Claims up to `limit` ready tasks of `action` at once, first by
    /// priority, then not-before time, then id. Their leases run from now,
    /// so claim only what will start soon.
    pub async fn claim_many(&self, action: &str, limit: u32) -> Result<Vec<Lease>> {
        self.claim_many_as(action, limit, &self.inner.claimer).await
    }

    /// [`claim_many`](Queue::claim_many), recording `worker` as the
    /// holder.
    pub(crate) async fn claim_many_as(
        &self,
        action: &str,
        limit: u32,
        worker: &WorkerId,
    ) -> Result<Vec<Lease>> {
        Ok(self.claim_held(action, limit, worker).await?.0)
    }

    /// [`claim_many_as`](Queue::claim_many_as), saying too what the
    /// action's limits held back.
    pub(crate) async fn claim_held(
        &self,
        action: &str,
        limit: u32,
        worker: &WorkerId,
    ) -> Result<(Vec<Lease>, Held)> {
        validate_action(action)?;
        if limit == 0 || limit > MAX_CLAIM_BATCH {
            return Err(Error::invalid(
                "limit",
                format!("{limit} is outside 1..={MAX_CLAIM_BATCH}"),
            ));
        }
        let expiry = ExpiryBackoff::from_backoff(&self.inner.config.backoff);
        let claimed = self
            .backend()
            .task_claim(action, limit, expiry, worker)
            .await?;
        let held = claimed.held;
        let leases = claimed.tasks.into_iter().map(|task| {
            let lease = Lease::new(task, self.clone());
            if held.limited {
                lease.limited()
            } else {
                lease
            }
        });
        Ok((leases.collect(), held))
    }

    /// Claims the oldest ready task of `action`, waiting up to `max_wait`
    /// for one to become ready. An idle wait ends early when a task of the
    /// action is enqueued through this queue (or, on backends that support
    /// it, by another process); otherwise it looks again every
    /// [`QueueConfig::poll_interval`]. Returns `None` if nothing became
    /// ready in time.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// use std::time::Duration;
    ///
    /// let producer = queue.clone();
    /// tokio::spawn(async move { producer.enqueue("email", &"ada@example.com").await });
    /// // Returns as soon as the task is enqueued, not after a poll.
    /// let lease = queue.claim_wait("email", Duration::from_secs(10)).await?.expect("a task");
    /// lease.complete().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn claim_wait(&self, action: &str, max_wait: Duration) -> Result<Option<Lease>> {
        validate_action(action)?;
        validate_duration("max_wait", max_wait, true)?;
        self.ensure_listening();
        let deadline = Instant::now() + max_wait;
        loop {
            let mut subscription = self.inner.shared.wakeups.subscribe(action);
            if let Some(lease) = self.claim(action).await? {
                return Ok(Some(lease));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let _idle = self.inner.shared.wakeups.idle(action);
            subscription
                .wait(left.min(self.inner.config.poll_interval))
                .await;
        }
    }

    /// How many tasks of `action` a claim could take now (queued and due,
    /// or with an expired lease; none while the action is
    /// [paused](Queue::pause)). A plain read: it takes no write lock.
    pub async fn len(&self, action: &str) -> Result<u64> {
        validate_action(action)?;
        self.backend().task_count_ready(action).await
    }

    /// Whether no task of `action` is ready now.
    pub async fn is_empty(&self, action: &str) -> Result<bool> {
        Ok(self.len(action).await? == 0)
    }

    /// Task counts per action and state, sorted by action, with the paused
    /// actions marked (a paused action without tasks has a row too).
    pub async fn stats(&self) -> Result<Vec<ActionStats>> {
        self.backend().task_stats().await
    }

    /// One task by id, in any state; `None` if there is no such task.
    pub async fn get(&self, id: TaskId) -> Result<Option<Task>> {
        self.backend().task_get(id).await
    }

    /// A page of tasks, filtered by action and state. Pass the last id of
    /// a page as `after` to get the next. A page takes about as long at the
    /// millionth task as at the first, and a state few tasks are in (the
    /// failed ones, say) is found without reading the others.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// use taskq::{ListOptions, State};
    ///
    /// for n in 0..5 {
    ///     queue.enqueue("email", &n).await?;
    /// }
    /// let mut page = ListOptions { action: Some("email".into()), state: Some(State::Queued), limit: 2, ..ListOptions::default() };
    /// let mut seen = 0;
    /// loop {
    ///     let tasks = queue.list(&page).await?;
    ///     let Some(last) = tasks.last() else { break };
    ///     page.after = Some(last.id);
    ///     seen += tasks.len();
    /// }
    /// assert_eq!(seen, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list(&self, options: &ListOptions) -> Result<Vec<Task>> {
        options.validate()?;
        self.backend().task_list(options).await
    }

    /// Queues a failed or cancelled task again, with its tries reset, to
    /// run now. It keeps its unique key: if another task holds that key
    /// now, the retry fails with [`Error::Duplicate`] (see
    /// [`retry_with`](Queue::retry_with) to replace or clear it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), taskq::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
    /// let id = queue.enqueue("email", &"ada@example.com").await?;
    /// let lease = queue.claim("email").await?.expect("a task");
    /// lease.fail_permanently("the mail server refused the address").await?;
    /// assert_eq!(queue.get(id).await?.unwrap().state, taskq::State::Failed);
    ///
    /// queue.retry(id).await?;
    /// let task = queue.get(id).await?.unwrap();
    /// assert_eq!((task.state, task.tries), (taskq::State::Queued, 0));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn retry(&self, id: TaskId) -> Result<()> {
        self.retry_with(id, RetryKey::Keep).await
    }

    /// Deletes a task in any state. A worker holding it then gets
    /// [`Error::LeaseLost`] when it finishes.
    pub async fn delete(&self, id: TaskId) -> Result<()> {
        self.backend().task_delete(id).await
    }

    /// Deletes the tasks in a finished `state` ([`State::Failed`],
    /// [`State::Succeeded`] or [`State::Cancelled`]) that finished at least
    /// `older_than` ago, and returns how many.
    pub async fn purge(&self, state: State, older_than: Duration) -> Result<u64> {
        validate_purge(state, older_than)?;
        self.backend().task_purge(state, older_than, None).await
    }

    /// [`purge`](Self::purge), at most `limit` tasks (1 to
    /// [`MAX_PURGE_BATCH`]), the longest finished first: a batch short
    /// enough not to hold up other writers. Tasks another caller is
    /// purging or retrying at that moment are left out, so that several
    /// callers take different tasks; call again until it returns less
    /// than `limit`. Workers do this on their own (see
    /// [`Retention`](crate::worker::Retention)).
    pub async fn purge_batch(&self, state: State, older_than: Duration, limit: u32) -> Result<u64> {
        if !(1..=MAX_PURGE_BATCH).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("a purge batch is 1 to {MAX_PURGE_BATCH} tasks, not {limit}"),
            ));
        }
        validate_purge(state, older_than)?;
        self.backend()
            .task_purge(state, older_than, Some(limit))
            .await
    }

    /// Requeues every task whose lease has expired (or fails it, when its
    /// tries are used up) and returns how many moved. After its first try
    /// an expired task runs again at once; after later tries it waits the
    /// backoff of a failed try, so a task that crashes its workers does not
    /// loop hot. Claims do this
    /// lazily, so calling it is optional: it makes expired tasks show up
    /// in `len` and `stats` as queued sooner.
    pub async fn requeue_expired(&self) -> Result<u64> {
        let expiry = ExpiryBackoff::from_backoff(&self.inner.config.backoff);
        self.backend().task_requeue_expired(expiry).await
    }
}
