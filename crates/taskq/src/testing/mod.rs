//! Helpers for the tests of code that uses taskq (feature `testing`): a
//! throwaway database, assertions on what was enqueued, a worker's ready
//! tasks run inline, and time travel on SQLite.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), taskq::Error> {
//! use std::time::Duration;
//!
//! use serde_json::{json, Value};
//! use taskq::testing::{self, Ended, TestDatabase};
//! use taskq::worker::{TaskContext, Worker, WorkerConfig};
//! use taskq::NewTask;
//!
//! // A SQLite file in a temporary directory, on a clock that moves when told.
//! let db = TestDatabase::sqlite_manual_clock()?;
//! let queue = db.queue().await?;
//!
//! // The code under test enqueues a welcome email for later.
//! let task = NewTask::json("email", &json!({"to": "ada@example.com", "kind": "welcome"}))?;
//! queue.enqueue_task(task.delay(Duration::from_secs(3600))).await?;
//!
//! // A payload matches when it holds these fields (others may be there too).
//! testing::assert_enqueued(&queue, "email", json!({"to": "ada@example.com"})).await;
//! testing::assert_not_enqueued(&queue, "email", json!({"to": "bob@example.com"})).await;
//!
//! let mut worker = Worker::new(queue.clone(), WorkerConfig::default());
//! worker.handle("email", |_: Value, _ctx: TaskContext| async { Ok::<_, String>(()) })?;
//! // Not due yet: nothing runs. An hour later, it does.
//! assert!(testing::drain(&worker).await?.runs.is_empty());
//! db.advance(Duration::from_secs(3600))?;
//! let drained = testing::drain(&worker).await?;
//! assert_eq!(drained.ended(Ended::Completed), 1);
//! # Ok(())
//! # }
//! ```
//!
//! **Time on PostgreSQL.** PostgreSQL keeps the time of tasks by its
//! server's clock, which no client can move, so [`TestDatabase::advance`]
//! works on SQLite only. On PostgreSQL, give tasks short delays and
//! leases (milliseconds) and wait them out, or test the timing on SQLite:
//! both backends pass the same conformance suite.

mod assert;
mod drain;

use std::time::Duration;

pub use assert::{assert_enqueued, assert_not_enqueued, enqueued, Matcher};
pub use drain::{drain, drain_at_most, Drained, Ended, Run, MAX_DRAIN_RUNS};

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::{ManualClock, QueueConfig};

/// A database for one test, empty at first, that hands out queues of
/// their own connections (as separate processes would have): a SQLite
/// file in a temporary directory removed when this is dropped, or a fresh
/// schema of a PostgreSQL database.
#[derive(Debug)]
pub struct TestDatabase {
    place: Place,
    clock: Option<ManualClock>,
}

#[derive(Debug)]
enum Place {
    #[cfg(feature = "sqlite")]
    Sqlite(tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        config: crate::postgres::PostgresConfig,
    },
}

impl TestDatabase {
    /// A SQLite file in a new temporary directory, on the system clock.
    #[cfg(feature = "sqlite")]
    pub fn sqlite() -> Result<Self> {
        let dir = tempfile::tempdir()
            .map_err(|e| Error::other(format!("could not make a temporary directory: {e}")))?;
        Ok(TestDatabase {
            place: Place::Sqlite(dir),
            clock: None,
        })
    }

    /// A SQLite file in a new temporary directory, on a [`ManualClock`]
    /// that starts at the current time and moves only by
    /// [`advance`](Self::advance) (or through [`clock`](Self::clock)).
    #[cfg(feature = "sqlite")]
    pub fn sqlite_manual_clock() -> Result<Self> {
        let mut db = Self::sqlite()?;
        db.clock = Some(ManualClock::new(std::time::SystemTime::now()));
        Ok(db)
    }

    /// A fresh schema (`taskq_test_` and 16 random hex digits) of the
    /// PostgreSQL database at `url`, made by the first queue. It stays
    /// after the test unless [`drop_schema`](Self::drop_schema) removes it.
    #[cfg(feature = "postgres")]
    pub fn postgres(url: &str) -> Self {
        Self::postgres_with(url, crate::postgres::PostgresConfig::default())
    }

    /// [`postgres`](Self::postgres) with these settings for every queue,
    /// but in a fresh schema whatever `config.schema` says.
    #[cfg(feature = "postgres")]
    pub fn postgres_with(url: &str, mut config: crate::postgres::PostgresConfig) -> Self {
        config.schema = format!("taskq_test_{:016x}", fastrand::u64(..));
        TestDatabase {
            place: Place::Postgres {
                url: url.to_owned(),
                config,
            },
            clock: None,
        }
    }

    /// A PostgreSQL test database in the schema `config.schema` names,
    /// which the test owns (one made for it, or one it prepared by hand),
    /// rather than a fresh one.
    #[cfg(feature = "postgres")]
    pub fn postgres_in(url: &str, config: crate::postgres::PostgresConfig) -> Self {
        TestDatabase {
            place: Place::Postgres {
                url: url.to_owned(),
                config,
            },
            clock: None,
        }
    }

    /// A new queue on this database with default settings.
    pub async fn queue(&self) -> Result<Queue> {
        self.queue_with(QueueConfig::default()).await
    }

    /// A new queue on this database, with its own connections.
    pub async fn queue_with(&self, config: QueueConfig) -> Result<Queue> {
        match &self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(dir) => {
                let mut sqlite = crate::sqlite::SqliteConfig::default();
                if let Some(clock) = &self.clock {
                    sqlite.clock = crate::Clock::Manual(clock.clone());
                }
                let path = dir.path().join("taskq.db");
                let backend = crate::sqlite::SqliteBackend::open(path, sqlite).await?;
                Queue::new(backend, config)
            }
            #[cfg(feature = "postgres")]
            Place::Postgres { url, config: pg } => {
                let backend = crate::postgres::PostgresBackend::connect(url, pg.clone()).await?;
                Queue::new(backend, config)
            }
        }
    }

    /// The SQLite file, if this is one.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        match &self.place {
            Place::Sqlite(dir) => Some(dir.path().join("taskq.db")),
            #[cfg(feature = "postgres")]
            Place::Postgres { .. } => None,
        }
    }

    /// The PostgreSQL schema, if this is one.
    pub fn schema(&self) -> Option<&str> {
        match &self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(_) => None,
            #[cfg(feature = "postgres")]
            Place::Postgres { config, .. } => Some(&config.schema),
        }
    }

    /// The manual clock, if this database is on one.
    pub fn clock(&self) -> Option<&ManualClock> {
        self.clock.as_ref()
    }

    /// Moves the manual clock forward by `by`: delays, backoffs and leases
    /// reach their end without waiting. [`Error::InvalidInput`] on a
    /// database without a manual clock (PostgreSQL's is its server's).
    pub fn advance(&self, by: Duration) -> Result<()> {
        let clock = self.clock.as_ref().ok_or_else(|| {
            Error::invalid(
                "clock",
                "only a SQLite test database made with sqlite_manual_clock() can move its clock; \
                 PostgreSQL keeps time by its server's clock",
            )
        })?;
        clock.advance(by);
        Ok(())
    }

    /// Removes this test's PostgreSQL schema and everything in it (nothing
    /// to do on SQLite, whose directory goes when this is dropped). Close
    /// its queues' workers first.
    pub async fn drop_schema(self) -> Result<()> {
        match self.place {
            #[cfg(feature = "sqlite")]
            Place::Sqlite(_) => Ok(()),
            #[cfg(feature = "postgres")]
            Place::Postgres { url, config } => {
                // Not migrated first: a schema no queue made is not made
                // only to be dropped.
                let config = crate::postgres::PostgresConfig {
                    migrate: false,
                    ..config
                };
                crate::postgres::PostgresBackend::connect(&url, config)
                    .await?
                    .drop_schema()
                    .await
            }
        }
    }
}
