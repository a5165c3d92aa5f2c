//! The vacuum of the churning tables by the running backend, and the
//! table settings of migration 0008.

use super::*;

/// `taskq_tasks`'s dead rows and how often it was vacuumed by hand (not by
/// autovacuum), as the statistics say.
async fn tasks_stats(client: &tokio_postgres::Client, schema: &str) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT n_dead_tup, vacuum_count FROM pg_stat_user_tables \
             WHERE schemaname = $1 AND relname = 'taskq_tasks'",
            &[&schema],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// How long a test waits to see that no vacuum comes: a server process
/// reports its deletes to the statistics up to 10 s after it goes idle, and
/// the backend vacuums within a second or two of seeing them.
const NEVER: Duration = Duration::from_secs(14);

/// Claims and completes `n` tasks, `batch` at a time.
async fn churn(queue: &Queue, n: usize, batch: usize) {
    let mut done = 0;
    while done < n {
        let tasks = (0..batch)
            .map(|i| NewTask::json("a", &i).unwrap())
            .collect();
        queue.enqueue_many(tasks).await.unwrap();
        for lease in queue.claim_many("a", batch as u32).await.unwrap() {
            lease.complete().await.unwrap();
        }
        done += batch;
    }
}

/// Waits up to `within` for `taskq_tasks` to have been vacuumed by hand
/// more than `was` times; the dead rows and vacuums then.
async fn until_vacuumed(schema: &str, was: i64, within: Duration) -> Option<(i64, i64)> {
    let client = raw_client().await;
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        let (dead, vacuums) = tasks_stats(&client, schema).await;
        if vacuums > was {
            return Some((dead, vacuums));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A backend that leaves dead rows past `vacuum_after` vacuums the tasks
/// table itself within a few seconds, and the dead rows are gone after.
#[tokio::test]
async fn a_writing_backend_vacuums_the_tasks_table_past_the_threshold() {
    let db = postgres_db().await;
    let config = PostgresConfig {
        vacuum_after: Some(500),
        ..db.config()
    };
    let backend = PostgresBackend::connect(&url(), config).await.unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
    churn(&queue, 1_000, 100).await;
    let (dead, vacuums) = until_vacuumed(&db.schema, 0, Duration::from_secs(20))
        .await
        .expect("taskq_tasks vacuumed by the backend within 20 s");
    assert!(vacuums >= 1);
    assert!(dead < 500, "{dead} dead rows left after the vacuum");
    // Below the threshold again: no vacuum for a handful of dead rows.
    churn(&queue, 20, 10).await;
    assert_eq!(
        until_vacuumed(&db.schema, vacuums, NEVER).await,
        None,
        "vacuumed again for 40 dead rows"
    );
}

/// With `vacuum_after: None` the backend never vacuums: the dead rows stay
/// for autovacuum.
#[tokio::test]
async fn vacuum_after_none_leaves_the_tables_to_autovacuum() {
    let db = postgres_db().await;
    let config = PostgresConfig {
        vacuum_after: None,
        ..db.config()
    };
    let backend = PostgresBackend::connect(&url(), config).await.unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
    churn(&queue, 1_000, 100).await;
    assert_eq!(until_vacuumed(&db.schema, 0, NEVER).await, None);
}

/// A threshold under 100 is refused with a typed error.
#[tokio::test]
async fn a_tiny_vacuum_threshold_is_refused() {
    let db = postgres_db().await;
    let config = PostgresConfig {
        vacuum_after: Some(10),
        ..db.config()
    };
    let error = PostgresBackend::connect(&url(), config).await.unwrap_err();
    assert!(
        matches!(error, Error::InvalidInput { field, .. } if field == "vacuum_after"),
        "{error:?}"
    );
}

/// A role that does not own the tables leaves them to autovacuum (its
/// vacuum would only warn) and still works.
#[tokio::test]
async fn a_role_that_does_not_own_the_tables_does_not_vacuum() {
    let db = postgres_db().await;
    let owner = PostgresBackend::connect(&url(), db.config()).await.unwrap();
    drop(owner);
    let client = raw_client().await;
    let role = format!("r_{}", &db.schema[2..]);
    client
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA {s} TO {role}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {role}; \
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {role}; \
             GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {role}",
            s = db.schema
        ))
        .await
        .unwrap();
    let config = PostgresConfig {
        vacuum_after: Some(100),
        migrate: false,
        ..db.config()
    };
    let backend = PostgresBackend::connect(&as_role(&role), config)
        .await
        .unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
    churn(&queue, 1_000, 100).await;
    assert_eq!(queue.len("a").await.unwrap(), 0, "the queue works");
    assert_eq!(until_vacuumed(&db.schema, 0, NEVER).await, None);
    drop(queue);
    client
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await
        .unwrap();
}

/// The test server's URL as a key-value string for `role`.
fn as_role(role: &str) -> String {
    use std::str::FromStr;
    let config = tokio_postgres::Config::from_str(&url()).unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
    };
    format!(
        "host={host} port={} dbname={} user={role}",
        config.get_ports()[0],
        config.get_dbname().unwrap_or("postgres")
    )
}

/// Migration 0008 has autovacuum treat the churning tables as soon as
/// 5,000 of their rows are dead.
#[tokio::test]
async fn the_churning_tables_are_set_for_autovacuum() {
    let db = postgres_db().await;
    let _queue = db.queue().await;
    let client = raw_client().await;
    for table in ["taskq_tasks", "taskq_tallies"] {
        let row = client
            .query_one(
                "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&db.schema, &table],
            )
            .await
            .unwrap();
        let options: Vec<String> = row.get(0);
        for option in [
            "autovacuum_vacuum_scale_factor=0",
            "autovacuum_vacuum_threshold=5000",
        ] {
            assert!(options.iter().any(|o| o == option), "{table}: {options:?}");
        }
    }
}

/// The URL can turn the vacuum on (`vacuum_after=N`, as the `taskq`
/// command takes it); a value that is not a number is refused.
#[tokio::test]
async fn the_url_can_turn_the_vacuum_on() {
    let db = postgres_db().await;
    let url = format!("{}?schema={}&vacuum_after=500", url(), db.schema);
    let queue = Queue::connect(&url).await.unwrap();
    churn(&queue, 1_000, 100).await;
    until_vacuumed(&db.schema, 0, Duration::from_secs(20))
        .await
        .expect("taskq_tasks vacuumed by the backend within 20 s");
    for bad in ["vacuum_after=lots", "vacuum_after=10"] {
        let url = format!("{}?schema={}&{bad}", super::url(), db.schema);
        assert!(
            matches!(Queue::connect(&url).await, Err(Error::InvalidInput { .. })),
            "{bad}"
        );
    }
}
