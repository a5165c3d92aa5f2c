//! The conformance suite and the PostgreSQL-only behaviour, on a real
//! server: `./scripts/test` starts a throwaway one and sets
//! `TASKQ_TEST_POSTGRES_URL`. Each test works in a schema of its own; the
//! PostgreSQL-only tests are split by scenario into the modules below.

#![cfg(feature = "postgres")]

#[path = "../conformance/mod.rs"]
mod conformance;
mod connect;
mod control;
mod counts;
mod deadlocks;
mod helpers;
mod lost_answer;
mod lost_connection;
mod migrate;
mod notify;
mod pgbouncer;
mod plans;
mod processes;
#[cfg(feature = "sqlx")]
mod sqlx_twins;
mod transactional;
mod vacuum;
mod workflows;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use taskq::postgres::{self, PostgresBackend, PostgresConfig};
use taskq::testing::TestDatabase;
use taskq::{DatabaseErrorKind, Error, NewTask, Queue, QueueConfig, State, TaskId};

use conformance::{claim_after_enqueue, claim_and_complete, TestDb};

fn url() -> String {
    std::env::var("TASKQ_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "the PostgreSQL tests need a server: run ./scripts/test, which starts a throwaway \
             one, or set TASKQ_TEST_POSTGRES_URL=postgres://user@host:port/db \
             (install PostgreSQL with: sudo apt-get install postgresql)"
        )
    })
}

fn fresh_schema() -> String {
    format!("t_{:016x}", fastrand::u64(..))
}

/// A schema of `taskq::testing`, which the helpers of this suite age by
/// hand.
struct PostgresDb {
    db: TestDatabase,
    schema: String,
}

impl PostgresDb {
    fn from_db(db: TestDatabase) -> Self {
        let schema = db.schema().expect("a PostgreSQL schema").to_owned();
        PostgresDb { db, schema }
    }

    /// The test database in `schema`, which must be new.
    fn in_schema(schema: String) -> Self {
        let config = PostgresConfig {
            schema,
            ..small_pool()
        };
        PostgresDb::from_db(TestDatabase::postgres_in(&url(), config))
    }

    /// The settings of its queues.
    fn config(&self) -> PostgresConfig {
        PostgresConfig {
            schema: self.schema.clone(),
            ..small_pool()
        }
    }
}

/// Four connections a queue: the tests open many queues at once.
fn small_pool() -> PostgresConfig {
    PostgresConfig {
        pool_size: 4,
        ..PostgresConfig::default()
    }
}

#[async_trait]
impl TestDb for PostgresDb {
    async fn queue_with(&self, config: QueueConfig) -> Queue {
        self.db.queue_with(config).await.unwrap()
    }

    async fn age_schedule(&self, name: &str, by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap();
        let sql = format!(
            "UPDATE {}.taskq_schedules SET next_at = next_at - $2 WHERE name = $1",
            self.schema
        );
        let aged = raw_client()
            .await
            .execute(&sql, &[&name, &by])
            .await
            .unwrap();
        assert_eq!(aged, 1, "no schedule {name}");
    }

    async fn age_finished(&self, ids: &[TaskId], by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap();
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let sql = format!(
            "UPDATE {}.taskq_tasks SET finished_at = finished_at - $2::bigint * interval '1 microsecond' \
             WHERE id = ANY($1) AND finished_at IS NOT NULL",
            self.schema
        );
        let aged = raw_client()
            .await
            .execute(&sql, &[&ids, &by])
            .await
            .unwrap();
        assert_eq!(aged, ids.len() as u64, "not every task is finished");
    }
}

async fn postgres_db() -> PostgresDb {
    PostgresDb::from_db(TestDatabase::postgres_with(&url(), small_pool()))
}

conformance_tests!(postgres_db);

async fn raw_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Inserts a queued task of `action` with plain SQL, as an operator or an
/// application might, not through taskq.
async fn insert_by_hand(client: &impl tokio_postgres::GenericClient, schema: &str, action: &str) {
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us)
                     VALUES ($1, '\\x7b7d', 'queued', now(), 10, 1000000)"
            ),
            &[&action],
        )
        .await
        .unwrap();
}

/// The server process id of a session that works in `schema` and waits
/// for a lock, once there is one (within 20 s).
async fn pid_waiting_for_a_lock(client: &tokio_postgres::Client, schema: &str) -> i32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = client
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND position($1 in query) > 0",
                &[&schema],
            )
            .await
            .unwrap();
        if let Some(row) = waiting.first() {
            return row.get(0);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the write never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `n` listener sessions of `schema` have answered their
/// last setup statement (so each backend knows its own session's pid).
async fn until_listening(client: &tokio_postgres::Client, schema: &str, n: i64) {
    let name: String = format!("taskq listener taskq_{schema}")
        .chars()
        .take(63)
        .collect();
    for _ in 0..200 {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                 AND state = 'idle' AND query = 'SELECT pg_backend_pid()'",
                &[&name],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) == n {
            // The answer has reached the backend's driver; let it store it.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} listeners of {schema} never came up");
}
