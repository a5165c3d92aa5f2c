//! taskq: a durable task queue that lives in the SQL database your
//! application already has.
//!
//! A task is a row: an action (the queue's name) and a payload. Producers
//! [`enqueue`](Queue::enqueue) tasks; workers [`claim`](Queue::claim) the
//! first ready task of an action (by priority, then age) with an exclusive,
//! time-limited lease and
//! then [`complete`](Lease::complete), [`fail`](Lease::fail) or
//! [`release`](Lease::release) it. A worker that crashes or stalls loses
//! its lease and the task runs again; after its last try a task fails for
//! good and stays for inspection. Tasks live in an embedded SQLite file by
//! default, or in PostgreSQL (feature `postgres`) for applications on many
//! machines; [`Queue::connect`] picks the backend from a URL.
//!
//! ```
//! use taskq::{NewTask, Queue};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), taskq::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("jobs.db");
//! let queue = Queue::open_sqlite(&path).await?; // created and migrated
//!
//! queue.enqueue("resize", &serde_json::json!({"file": "cat.png"})).await?;
//!
//! if let Some(lease) = queue.claim("resize").await? {
//!     let job: serde_json::Value = lease.payload_json()?;
//!     println!("resizing {}", job["file"]);
//!     // Completing can enqueue follow-up tasks atomically with it.
//!     let thumbnail = NewTask::json("upload", &job["file"])?;
//!     lease.complete_with(vec![thumbnail]).await?;
//! }
//! assert_eq!(queue.len("upload").await?, 1);
//! # Ok(())
//! # }
//! ```
//!
//! Where to go next:
//! - [`Queue`]: enqueue, claim, count, inspect and administer tasks;
//! - [`Lease`]: what a worker does with a claimed task;
//! - a handler's [result](TaskResult), kept with its succeeded task
//!   ([`worker::Outcome::complete_with_result`], [`Task::result_json`]);
//! - [`EnqueueOptions`]: tries, lease length, delay, parent, priority,
//!   [unique key](Unique);
//! - control over tasks: [`Queue::cancel`], [`Queue::pause`],
//!   [`Queue::retry_with`], and each task's [`attempts`](Task::attempts);
//! - workflows: tasks that wait for others ([`NewTask::depends_on`],
//!   a [`Workflow`] of tasks that name each other, enqueued with
//!   [`Queue::enqueue_workflow`]), are cancelled with a failed dependency
//!   unless they [run anyway](NewTask::run_if_dependencies_fail), and read
//!   their dependencies' results ([`worker::TaskContext::result_of`]);
//! - periodic tasks: a [`Schedule`] (cron in a time zone, or an
//!   interval) declared with [`worker::Worker::schedule`] or
//!   [`Queue::schedules`], its ticks enqueued once by whichever worker
//!   takes them;
//! - limits across every worker: [`Queue::set_limits`] with [`Limits`]
//!   (how many run at once, how many start per period, how many per
//!   [concurrency key](NewTask::concurrency_key));
//! - [`sqlite`]: the SQLite backend, its durability settings, and
//!   enqueueing inside your own `rusqlite` transaction;
//! - `postgres` (feature `postgres`): the PostgreSQL backend, and
//!   enqueueing inside your own `tokio_postgres` transaction;
//! - inside your own sqlx transaction (feature `sqlx`):
//!   `postgres::sqlx` and `sqlite::sqlx`; through any other driver
//!   (diesel, sea-orm, ...): [`prepared`], taskq's statements as SQL text
//!   and values;
//! - [`blocking`]: the same API for synchronous programs;
//! - [`testing`] (feature `testing`): a throwaway database per test,
//!   assertions on what is enqueued, a worker's ready tasks run inline
//!   ([`testing::drain`]), and time travel on SQLite;
//! - what operators look at: [`Queue::stats`], [`Queue::list`] (by state,
//!   error text or parent), [`Queue::throughput`] (the last minutes'
//!   completions and failures), the workers' series through the
//!   `metrics` crate (`docs/metrics.md`), and the web dashboard of the
//!   `taskq-web` crate;
//! - [`Error`]: what can go wrong, as variants you can match.
//!
//! The life of a task, as a diagram and rules, is in [`lifecycle`].
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlite` | yes | the embedded SQLite backend ([`sqlite`]), with SQLite bundled |
//! | `postgres` | no | the PostgreSQL backend (`postgres`), on `tokio-postgres` |
//! | `sqlx` | no | enqueue and complete inside your own sqlx 0.9 transactions (`postgres::sqlx`, `sqlite::sqlx`, for the backends enabled); needs Rust 1.94 |
//! | `failpoints` | no | kill points for fault-injection tests; never in production |
//! | `testing` | no | [`testing`]: helpers for your tests (a throwaway database, assertions on what is enqueued, a worker's ready tasks run inline, time travel on SQLite) |
//!
//! Build these docs with every backend: `cargo doc --open -p taskq --all-features`.
//!
//! # Rust version
//!
//! taskq builds with Rust 1.91 or later (`rust-version` in its
//! `Cargo.toml`, the newest that one of its dependencies asks for); the
//! feature `sqlx` needs Rust 1.94, as sqlx 0.9 does. A release that needs
//! a newer Rust says so in its changelog.

#![cfg_attr(docsrs, feature(doc_cfg))]
// The crate docs link to both backends and the test helpers; a build
// without one of them has nothing to link to there.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "testing")),
    allow(rustdoc::broken_intra_doc_links)
)]
// Without a backend (a build for a backend of one's own), the helpers the
// two backends share are unused.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

mod attempt;
pub mod backend;
pub mod blocking;
mod bulk;
mod clock;
mod control;
mod error;
mod failpoint;
mod graph;
mod handoff;
mod history;
mod lease;
mod limits;
mod micros;
mod names;
mod options;
pub mod prepared;
mod queue;
mod registry;
mod result;
mod schedule;
mod schedules;
mod state;
mod task;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod throughput;
mod unique;
mod wakeup;
pub mod worker;
mod workflow;

#[doc = include_str!("../lifecycle.md")]
pub mod lifecycle {}

pub use attempt::{Attempt, AttemptOutcome, WorkerId, KEPT_ATTEMPTS};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use backend::postgres;
pub use backend::redact_url;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use backend::sqlite;
pub use bulk::RetriedMany;
pub use clock::{Clock, ManualClock};
pub use control::CancelledMany;
pub use error::{DatabaseError, DatabaseErrorKind, Error, Result};
pub use lease::{FailOutcome, Lease};
pub use limits::{LimitInfo, Limits, Rate, MAX_CONCURRENCY_KEY_LEN, MAX_LIMIT};
pub use names::{TaskId, MAX_ACTION_LEN};
pub use options::{
    Backoff, ConnectOptions, EnqueueOptions, ListOptions, NotBefore, Order, QueueConfig,
    DEFAULT_MAX_TRIES, DEFAULT_TIMEOUT, FOREVER, MAX_DURATION, MAX_ERROR_FILTER_LEN,
    MAX_LIST_LIMIT,
};
pub use queue::{Queue, MAX_CLAIM_BATCH, MAX_PURGE_BATCH};
pub use result::{TaskResult, MAX_RESULT_LEN};
pub use schedule::{
    Missed, Schedule, ScheduleInfo, Timing, Upserted, DEFAULT_GRACE, MAX_SCHEDULE_NAME_LEN,
};
pub use schedules::{Schedules, Ticked};
pub use state::{CancelOutcome, State};
pub use task::{ActionStats, CompletionRef, LeaseRef, NewTask, Task, MAX_PAYLOAD_LEN};
pub use throughput::{Throughput, THROUGHPUT_KEPT};
pub use unique::{Enqueued, RetryKey, Unique, MAX_UNIQUE_KEY_LEN};
pub use workflow::{Dependency, Link, Links, Workflow, WorkflowEnqueued, MAX_DEPENDENCIES};
