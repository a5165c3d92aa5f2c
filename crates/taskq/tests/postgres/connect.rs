//! Opening a PostgreSQL queue: which schemas are accepted, what a queue
//! that may not create anything leaves alone, what a login that fails
//! says, and that an enqueue's wake-up is sent even when its process ends
//! right after it.

use std::time::Instant;

use taskq::worker::{CancellationToken, TaskContext, Worker, WorkerConfig};
use taskq::ConnectOptions;

use super::*;

async fn schema_exists(client: &tokio_postgres::Client, schema: &str) -> bool {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_servers_own_schemas_are_refused() {
    let client = raw_client().await;
    for schema in ["information_schema", "pg_catalog", "pg_toast"] {
        let result = Queue::connect(&format!("{}?schema={schema}", url())).await;
        assert!(
            matches!(
                result,
                Err(Error::InvalidInput {
                    field: "schema",
                    ..
                })
            ),
            "{schema}: {result:?}"
        );
        let created: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{schema}.taskq_migrations")],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!created, "nothing was created in {schema}");
    }
}

#[tokio::test]
async fn a_queue_that_may_not_create_leaves_a_missing_schema_alone() {
    let client = raw_client().await;
    let schema = fresh_schema();
    let options = ConnectOptions {
        create: false,
        ..ConnectOptions::default()
    };
    let queue = Queue::connect_with(&format!("{}?schema={schema}", url()), options)
        .await
        .unwrap();
    let stats = queue.stats().await.unwrap_err();
    assert!(
        matches!(stats, Error::SchemaTooOld { found: 0, .. }),
        "{stats}"
    );
    assert!(
        stats.to_string().contains("no taskq tables"),
        "the message says what is missing: {stats}"
    );
    assert!(queue.enqueue("a", &1).await.is_err());
    assert!(!schema_exists(&client, &schema).await, "no schema created");

    // Once another process migrates, the same queue works.
    let creator = Queue::connect(&format!("{}?schema={schema}", url()))
        .await
        .unwrap();
    creator.enqueue("a", &1).await.unwrap();
    assert_eq!(queue.len("a").await.unwrap(), 1);
}

#[tokio::test]
async fn a_login_to_a_missing_database_cannot_open_it() {
    let base = url();
    let (server, _) = base.rsplit_once('/').unwrap();
    let missing = format!("{server}/no_such_database_{:08x}", fastrand::u32(..));
    let error = Queue::connect(&missing).await.unwrap_err();
    assert_eq!(
        error.database_kind(),
        Some(DatabaseErrorKind::CannotOpen),
        "{error}"
    );
    assert!(error.is_permanent());
}

/// A worker on `url` with a poll of 30 s, so that only a wake-up starts a
/// task within seconds; it reports each task it runs.
fn slow_polling_worker(
    queue: Queue,
    action: &'static str,
) -> (
    tokio::sync::mpsc::UnboundedReceiver<Instant>,
    CancellationToken,
) {
    let (ran, heard) = tokio::sync::mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let mut worker = Worker::new(queue, WorkerConfig::default());
    worker
        .handle(action, move |_: u32, _ctx: TaskContext| {
            let ran = ran.clone();
            async move {
                let _ = ran.send(Instant::now());
                Ok::<_, String>(())
            }
        })
        .unwrap();
    let stopped = stop.clone();
    tokio::spawn(worker.run_until(stopped.cancelled_owned()));
    (heard, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_from_a_process_that_ends_at_once_wakes_other_workers() {
    let schema = fresh_schema();
    let at = format!("{}?schema={schema}", url());
    let slow_poll = QueueConfig {
        poll_interval: Duration::from_secs(30),
        ..QueueConfig::default()
    };
    let backend = taskq::postgres::PostgresBackend::connect(
        &url(),
        taskq::postgres::PostgresConfig {
            schema: schema.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let waiting = Queue::new(backend, slow_poll).unwrap();
    let (mut ran, stop) = slow_polling_worker(waiting, "woken");
    let client = raw_client().await;
    until_listening(&client, &schema, 1).await;

    // A producer as short-lived as `taskq enqueue`: connect, enqueue one
    // task (or a batch), gone. Its background tasks end with it.
    for batch in [1, 3] {
        let producer = Queue::connect(&at).await.unwrap();
        let tasks = (0..batch)
            .map(|n| NewTask::json("woken", &n).unwrap())
            .collect();
        producer.enqueue_many(tasks).await.unwrap();
        let enqueued = Instant::now();
        drop(producer);
        let started = tokio::time::timeout(Duration::from_secs(10), ran.recv())
            .await
            .expect("woken by the producer's notification, not by the 30 s poll")
            .unwrap();
        assert!(started.duration_since(enqueued) < Duration::from_secs(10));
        for _ in 1..batch {
            tokio::time::timeout(Duration::from_secs(10), ran.recv())
                .await
                .unwrap()
                .unwrap();
        }
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_a_read_only_database_stops_with_the_error() {
    let schema = fresh_schema();
    let writable = Queue::connect(&format!("{}?schema={schema}", url()))
        .await
        .unwrap();
    writable.enqueue("stuck", &1).await.unwrap();
    // Every transaction of this session is read-only, as on a standby.
    let read_only = format!(
        "{}?schema={schema}&options=-c%20default_transaction_read_only%3Don",
        url()
    );
    let queue = Queue::connect_with(
        &read_only,
        ConnectOptions {
            create: false,
            ..ConnectOptions::default()
        },
    )
    .await
    .unwrap();
    let mut worker = Worker::new(queue, WorkerConfig::default());
    worker
        .handle("stuck", |_: u32, _ctx: TaskContext| async {
            Ok::<_, String>(())
        })
        .unwrap();
    let metrics = worker.metrics();
    let stopped = tokio::time::timeout(
        Duration::from_secs(30),
        worker.run_until(std::future::pending()),
    )
    .await
    .expect("the worker stops by itself");
    let error = stopped.unwrap_err();
    assert_eq!(
        error.database_kind(),
        Some(DatabaseErrorKind::ReadOnly),
        "{error}"
    );
    assert_eq!(metrics.snapshot().claim_errors, 1, "no retry loop");
    assert_eq!(
        writable.len("stuck").await.unwrap(),
        1,
        "the task is untouched"
    );
}

#[tokio::test]
async fn a_wrong_password_cannot_open_the_database() {
    let client = raw_client().await;
    // A role that must log in with a password (scripts/with-postgres).
    client
        .batch_execute(
            "DO $$ BEGIN
                 CREATE ROLE taskq_password_test LOGIN PASSWORD 'right';
             EXCEPTION WHEN duplicate_object THEN NULL;
             END $$",
        )
        .await
        .unwrap();
    let base = url();
    let (_, at) = base.split_once('@').unwrap();
    let wrong = format!("postgres://taskq_password_test:wrong@{at}");
    let error = Queue::connect(&wrong).await.unwrap_err();
    assert_eq!(
        error.database_kind(),
        Some(DatabaseErrorKind::CannotOpen),
        "{error}"
    );
    assert!(
        !error.to_string().contains("wrong"),
        "no password shown: {error}"
    );
}
