//! The conformance suite and the PostgreSQL-only behaviour, on a real
//! server: `./scripts/test` starts a throwaway one and sets
//! `TASKQ_TEST_POSTGRES_URL`. Each test works in a schema of its own.

#![cfg(feature = "postgres")]

mod conformance;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use taskq::postgres::{self, PostgresBackend, PostgresConfig};
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

struct PostgresDb {
    schema: String,
}

impl PostgresDb {
    fn config(&self) -> PostgresConfig {
        PostgresConfig {
            schema: self.schema.clone(),
            pool_size: 4,
            ..PostgresConfig::default()
        }
    }
}

#[async_trait]
impl TestDb for PostgresDb {
    async fn queue_with(&self, config: QueueConfig) -> Queue {
        let backend = PostgresBackend::connect(&url(), self.config())
            .await
            .unwrap();
        Queue::new(backend, config).unwrap()
    }
}

async fn postgres_db() -> PostgresDb {
    PostgresDb {
        schema: fresh_schema(),
    }
}

conformance_tests!(postgres_db);

async fn raw_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn connect_picks_the_backend_from_the_url() {
    let queue = Queue::connect(&url()).await.unwrap();
    assert!(queue.backend().supports_notify());
    let id = queue.enqueue("url", &1).await.unwrap();
    queue.delete(id).await.unwrap();
}

#[tokio::test]
async fn bad_schemas_and_urls_are_refused_without_leaking_secrets() {
    for schema in ["", "Upper", "x; DROP TABLE y", "1st", "a\"b"] {
        let config = PostgresConfig {
            schema: schema.into(),
            ..PostgresConfig::default()
        };
        let result = PostgresBackend::connect(&url(), config).await;
        assert!(
            matches!(
                result,
                Err(Error::InvalidInput {
                    field: "schema",
                    ..
                })
            ),
            "{schema}"
        );
    }
    let result = PostgresBackend::connect(
        "postgres://user:hunter2@127.0.0.1:port/db",
        PostgresConfig::default(),
    )
    .await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, Error::InvalidInput { field: "url", .. }),
        "{error}"
    );
    assert!(!format!("{error} {error:?}").contains("hunter2"));

    // Nothing listens on port 1.
    let config = PostgresConfig {
        connect_timeout: Duration::from_secs(2),
        ..PostgresConfig::default()
    };
    let result = PostgresBackend::connect("postgres://user:hunter2@127.0.0.1:1/db", config).await;
    let error = result.unwrap_err();
    assert_eq!(
        error.database_kind(),
        Some(DatabaseErrorKind::ConnectionLost),
        "{error}"
    );
    assert!(!format!("{error} {error:?}").contains("hunter2"));
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let client = raw_client().await;
    client
        .execute(
            &format!("INSERT INTO {}.taskq_migrations (version, name, checksum) VALUES (99, 'future', 0)", db.schema),
            &[],
        )
        .await
        .unwrap();
    let newer = |r: Result<(), Error>| {
        matches!(
            r,
            Err(Error::SchemaTooNew {
                found: 99,
                supported: taskq::postgres::SCHEMA_VERSION
            })
        )
    };
    assert!(newer(queue.migrate().await));
    assert!(newer(
        PostgresBackend::connect(&url(), db.config())
            .await
            .map(drop)
    ));
    let unmigrated = PostgresConfig {
        migrate: false,
        ..db.config()
    };
    assert!(newer(
        PostgresBackend::connect(&url(), unmigrated).await.map(drop)
    ));
}

#[tokio::test]
async fn an_unmigrated_schema_says_so() {
    let db = postgres_db().await;
    let config = PostgresConfig {
        migrate: false,
        ..db.config()
    };
    let backend = PostgresBackend::connect(&url(), config).await.unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
    assert!(matches!(
        queue.enqueue("a", &1).await,
        Err(Error::SchemaTooOld { .. })
    ));
    queue.migrate().await.unwrap();
    queue.enqueue("a", &1).await.unwrap();
}

/// A schema one migration behind this build, opened without migrating:
/// operations refuse with `SchemaTooOld`, naming both versions, instead of
/// failing on what the missing migration adds, and work once the schema
/// is migrated (here by another process, which the test stands in for by
/// putting the migration's row back).
#[tokio::test]
async fn an_older_schema_is_refused_until_migrated() {
    let db = postgres_db().await;
    db.queue().await;
    let client = raw_client().await;
    let latest = postgres::SCHEMA_VERSION;
    let migrations = format!("{}.taskq_migrations", db.schema);
    let row = client
        .query_one(
            &format!("DELETE FROM {migrations} WHERE version = $1 RETURNING name, checksum"),
            &[&latest],
        )
        .await
        .unwrap();
    let config = PostgresConfig {
        migrate: false,
        ..db.config()
    };
    let backend = PostgresBackend::connect(&url(), config).await.unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
    match queue.enqueue("a", &1).await {
        Err(Error::SchemaTooOld { found, needed }) => {
            assert_eq!((found, needed), (latest - 1, latest));
        }
        other => panic!("expected SchemaTooOld, got {other:?}"),
    }
    assert!(matches!(
        queue.stats().await,
        Err(Error::SchemaTooOld { .. })
    ));
    client
        .execute(
            &format!("INSERT INTO {migrations} (version, name, checksum) VALUES ($1, $2, $3)"),
            &[&latest, &row.get::<_, String>(0), &row.get::<_, i64>(1)],
        )
        .await
        .unwrap();
    queue.enqueue("a", &1).await.unwrap();
    assert_eq!(queue.len("a").await.unwrap(), 1);
}

#[tokio::test]
async fn concurrent_migrations_apply_once() {
    let db = postgres_db().await;
    let config = db.config();
    let connects = (0..6).map(|_| {
        let config = config.clone();
        tokio::spawn(async move { PostgresBackend::connect(&url(), config).await.map(drop) })
    });
    for connect in connects.collect::<Vec<_>>() {
        connect.await.unwrap().unwrap();
    }
    let client = raw_client().await;
    let row = client
        .query_one(
            &format!("SELECT count(*) FROM {}.taskq_migrations", db.schema),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), postgres::SCHEMA_VERSION);
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

#[tokio::test]
async fn transactional_enqueue_and_completion_follow_the_callers_transaction() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let mut client = raw_client().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE {}.orders (item text NOT NULL)",
            db.schema
        ))
        .await
        .unwrap();
    let insert = format!("INSERT INTO {}.orders (item) VALUES ($1)", db.schema);

    let tx = client.transaction().await.unwrap();
    tx.execute(&insert, &[&"book"]).await.unwrap();
    let kept = postgres::enqueue_in(&tx, &db.schema, &[NewTask::json("ship", &"book").unwrap()])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let tx = client.transaction().await.unwrap();
    tx.execute(&insert, &[&"lamp"]).await.unwrap();
    let gone = postgres::enqueue_in(&tx, &db.schema, &[NewTask::json("ship", &"lamp").unwrap()])
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    assert!(queue.get(kept[0]).await.unwrap().is_some());
    assert!(
        queue.get(gone[0]).await.unwrap().is_none(),
        "rolled back with the caller"
    );

    let lease = queue.claim("ship").await.unwrap().unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(&insert, &[&"shipped"]).await.unwrap();
    postgres::complete_in(
        &tx,
        &db.schema,
        &lease,
        vec![NewTask::json("notify", &1).unwrap()],
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        queue.get(lease.id()).await.unwrap().unwrap().state,
        State::Running
    );
    assert_eq!(queue.len("notify").await.unwrap(), 0);

    let tx = client.transaction().await.unwrap();
    tx.execute(&insert, &[&"shipped"]).await.unwrap();
    let follow = postgres::complete_in(
        &tx,
        &db.schema,
        &lease,
        vec![NewTask::json("notify", &1).unwrap()],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(queue.get(lease.id()).await.unwrap().is_none());
    assert_eq!(
        queue.get(follow[0]).await.unwrap().unwrap().parent,
        Some(lease.id())
    );
    let again = postgres::complete_in(&client, &db.schema, &lease, Vec::new()).await;
    assert!(matches!(again, Err(Error::LeaseLost { .. })));

    // The caller's own changes to the tasks later in the transaction are
    // counted (taskq's statements count only themselves).
    queue.enqueue("pack", &1).await.unwrap();
    let lease = queue.claim("pack").await.unwrap().unwrap();
    let tx = client.transaction().await.unwrap();
    postgres::complete_in(&tx, &db.schema, &lease, Vec::new())
        .await
        .unwrap();
    insert_by_hand(&tx, &db.schema, "pack").await;
    tx.commit().await.unwrap();
    assert_eq!(queue.len("pack").await.unwrap(), 1);
}

#[tokio::test]
async fn lease_times_come_from_the_database_clock() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    queue
        .enqueue_task(
            NewTask::json("clock", &1)
                .unwrap()
                .timeout(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let lease = queue.claim("clock").await.unwrap().unwrap();
    let client = raw_client().await;
    let row = client
        .query_one(
            &format!(
                "SELECT expires - created_at, expires <= now() + interval '1 hour' FROM {}.taskq_tasks WHERE id = $1",
                db.schema
            ),
            &[&lease.id().0],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(1),
        "the lease end is measured from the database's now()"
    );
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

#[tokio::test]
async fn notifications_go_out_only_when_another_session_listens() {
    // The longest schema name: the listeners' application_name is cut by
    // the server, and must still be recognized.
    let db = PostgresDb {
        schema: format!(
            "{:w<width$}",
            fresh_schema(),
            width = postgres::MAX_SCHEMA_LEN
        ),
    };
    let slow_poll = QueueConfig {
        poll_interval: Duration::from_secs(30),
        ..QueueConfig::default()
    };
    let mine = db.queue_with(slow_poll.clone()).await;

    // A session that hears the channel but is no taskq listener.
    let (client, mut connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(note) = message {
                let _ = heard_tx.send(note.payload().to_owned());
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN \"taskq_{}\"", db.schema))
        .await
        .unwrap();

    // Only this backend listens: its own waiter is woken in the process,
    // and no notification is sent.
    let latency = claim_after_enqueue(
        &mine,
        &mine,
        "mine",
        until_listening(&client, &db.schema, 1),
    )
    .await;
    assert!(latency < Duration::from_secs(5), "woken: {latency:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(heard.try_recv().is_err(), "nobody else listened");

    // Another backend (as if another process) waits: once the last check
    // for listeners is stale (1 s), enqueues notify it.
    let theirs = db.queue_with(slow_poll).await;
    let settle = async {
        until_listening(&client, &db.schema, 2).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    };
    let latency = claim_after_enqueue(&theirs, &mine, "theirs", settle).await;
    assert!(
        latency < Duration::from_secs(5),
        "woken, not polled: {latency:?}"
    );
    assert_eq!(heard.recv().await.as_deref(), Some("theirs"));

    // Within a second of that check, an enqueue sends its notification
    // itself, right behind its insert.
    let settle = tokio::time::sleep(Duration::from_millis(100));
    let latency = claim_after_enqueue(&theirs, &mine, "theirs", settle).await;
    assert!(
        latency < Duration::from_secs(5),
        "woken, not polled: {latency:?}"
    );
    let again = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await;
    assert_eq!(again.unwrap().as_deref(), Some("theirs"));
}

/// The test binary re-run as a worker process: claims and completes
/// "work" tasks until none is left, printing each id.
#[tokio::test]
#[ignore = "run by processes_complete_each_task_exactly_once as a child process"]
async fn child_worker() {
    let schema = std::env::var("TASKQ_TEST_CHILD_SCHEMA").expect("started by a parent test");
    let config = PostgresConfig {
        schema,
        pool_size: 2,
        ..PostgresConfig::default()
    };
    let backend = PostgresBackend::connect(&url(), config).await.unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
    let mut out = String::new();
    loop {
        let leases = queue.claim_many("work", 5).await.unwrap();
        if leases.is_empty() {
            break;
        }
        for lease in leases {
            out.push_str(&format!("DONE {}\n", lease.id()));
            lease.complete().await.unwrap();
        }
    }
    print!("\n{out}");
}

#[tokio::test]
async fn processes_complete_each_task_exactly_once() {
    const TASKS: usize = 10_000;
    const PROCESSES: usize = 4;
    let db = postgres_db().await;
    let queue = db.queue().await;
    let mut ids = HashSet::new();
    for chunk in (0..TASKS).collect::<Vec<_>>().chunks(1000) {
        let batch = chunk
            .iter()
            .map(|i| NewTask::json("work", i).unwrap())
            .collect();
        ids.extend(queue.enqueue_many(batch).await.unwrap());
    }
    let children: Vec<Child> = (0..PROCESSES)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--ignored", "--exact", "child_worker", "--nocapture"])
                .env("TASKQ_TEST_CHILD_SCHEMA", &db.schema)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut runs: HashMap<TaskId, usize> = HashMap::new();
    let mut per_process = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        let mut mine = 0;
        for id in text.lines().filter_map(|l| l.strip_prefix("DONE ")) {
            *runs.entry(TaskId(id.parse().unwrap())).or_default() += 1;
            mine += 1;
        }
        per_process.push(mine);
    }
    assert_eq!(runs.len(), TASKS, "every task ran: {per_process:?}");
    assert_eq!(runs.keys().copied().collect::<HashSet<_>>(), ids);
    let twice: Vec<_> = runs.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        twice.is_empty(),
        "tasks completed more than once: {twice:?}"
    );
    assert!(
        per_process.iter().filter(|&&n| n > 0).count() >= 2,
        "work was shared: {per_process:?}"
    );
    assert!(queue.stats().await.unwrap().is_empty());
}

async fn count_rows(client: &tokio_postgres::Client, schema: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {schema}.taskq_tallies");
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

/// Waits up to 10 s until the count that `sql` selects is at most `most`
/// (the backend folds and adopts counts every second).
async fn until_count_at_most(client: &tokio_postgres::Client, sql: &str, most: i64, what: &str) {
    let reached = async {
        while client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) > most {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), reached)
        .await
        .is_err()
    {
        panic!("not within 10 s: {what}");
    }
}

/// The count changes that taskq's statements append are folded into one
/// row per action and state in the background, and the counts stay exact,
/// also for tasks enqueued inside the caller's own transaction, changes
/// made by hand in SQL (counted by triggers) and a TRUNCATE.
#[tokio::test]
async fn count_changes_are_folded_and_stay_exact() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    // A batch: counted at once (single enqueues are counted live, below).
    let batch = (0..30).map(|i| NewTask::json("a", &i).unwrap()).collect();
    queue.enqueue_many(batch).await.unwrap();
    let mut client = raw_client().await;
    let tx = client.transaction().await.unwrap();
    for i in 0..2 {
        postgres::enqueue_in(&tx, &db.schema, &[NewTask::json("b", &i).unwrap()])
            .await
            .unwrap();
    }
    // A change by hand later in the same transaction is counted too (by
    // the triggers: its statement is not one of taskq's).
    insert_by_hand(&tx, &db.schema, "b").await;
    // Seen from inside the transaction, where no fold can reach them yet:
    // a row of changes per taskq statement, and one per row changed by hand.
    let appended: i64 = tx
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.taskq_tallies WHERE action = 'b'",
                db.schema
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(appended, 3, "changes are appended");
    tx.commit().await.unwrap();
    for _ in 0..10 {
        claim_and_complete(&queue, "a").await;
    }
    let _running = queue.claim("a").await.unwrap().unwrap();
    // Running tasks are counted live, not tallied.
    let tallies = format!("SELECT count(*) FROM {}.taskq_tallies", db.schema);
    until_count_at_most(&client, &tallies, 2, "folded into (a, queued), (b, queued)").await;
    let stats = queue.stats().await.unwrap();
    let counts: Vec<_> = stats
        .iter()
        .map(|s| (s.action.as_str(), s.queued, s.running))
        .collect();
    assert_eq!(counts, [("a", 19, 1), ("b", 3, 0)]);
    assert_eq!(queue.len("a").await.unwrap(), 19);

    let by_hand = format!(
        "INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us)
             VALUES ('c', '\\x7b7d', 'queued', now(), 10, 1000000), ('c', '\\x7b7d', 'queued', now(), 10, 1000000);
         UPDATE {schema}.taskq_tasks SET state = 'failed', finished_at = now()
             WHERE id = (SELECT min(id) FROM {schema}.taskq_tasks WHERE action = 'c');
         UPDATE {schema}.taskq_tasks SET payload = '\\x5b5d' WHERE action = 'a';
         DELETE FROM {schema}.taskq_tasks WHERE id = (SELECT min(id) FROM {schema}.taskq_tasks WHERE action = 'b');",
        schema = db.schema
    );
    client.batch_execute(&by_hand).await.unwrap();
    let stats = queue.stats().await.unwrap();
    let counts: Vec<_> = stats
        .iter()
        .map(|s| (s.action.as_str(), s.queued, s.running, s.failed))
        .collect();
    assert_eq!(counts, [("a", 19, 1, 0), ("b", 2, 0, 0), ("c", 1, 0, 1)]);
    assert_eq!(queue.len("c").await.unwrap(), 1);
    client
        .batch_execute(&format!("TRUNCATE {}.taskq_tasks", db.schema))
        .await
        .unwrap();
    assert!(queue.stats().await.unwrap().is_empty());
    assert_eq!(queue.len("a").await.unwrap(), 0);
}

/// Every task's action and state as the table holds them, and as `stats`
/// reports them.
async fn counts_by_table_and_stats(
    client: &tokio_postgres::Client,
    schema: &str,
    queue: &Queue,
) -> (
    BTreeMap<(String, State), u64>,
    BTreeMap<(String, State), u64>,
) {
    let sql = format!("SELECT action, state, count(*) FROM {schema}.taskq_tasks GROUP BY 1, 2");
    let table = client
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let state: String = row.get(1);
            let n: i64 = row.get(2);
            ((row.get(0), state.parse().unwrap()), n as u64)
        })
        .collect();
    (table, conformance::reported_stats(queue).await)
}

/// A single enqueue inserts its task uncounted, without a count row:
/// `len` and `stats` count such tasks live in whatever state taskq or SQL
/// by hand moves them to, and the backend adopts them into the kept counts
/// once more than 10,000 wait.
#[tokio::test]
async fn single_enqueues_are_counted_live_until_adopted() {
    let db = postgres_db().await;
    let queue = db.queue_with(conformance::no_backoff()).await;
    let retaining = db
        .queue_with(QueueConfig {
            retain_completed: true,
            ..conformance::no_backoff()
        })
        .await;
    let client = raw_client().await;
    let schema = &db.schema;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(queue.enqueue("a", &i).await.unwrap());
    }
    assert_eq!(count_rows(&client, schema).await, 0, "no count rows");
    assert_eq!(queue.len("a").await.unwrap(), 12);

    // Through every state by taskq's statements.
    claim_and_complete(&queue, "a").await;
    claim_and_complete(&retaining, "a").await;
    let failed = queue.claim("a").await.unwrap().unwrap();
    let failed_id = failed.id();
    failed.fail_permanently("for good").await.unwrap();
    queue
        .claim("a")
        .await
        .unwrap()
        .unwrap()
        .fail("again")
        .await
        .unwrap();
    queue
        .claim("a")
        .await
        .unwrap()
        .unwrap()
        .release()
        .await
        .unwrap();
    let _running = queue.claim("a").await.unwrap().unwrap();
    queue.delete(ids[11]).await.unwrap();
    let (table, reported) = counts_by_table_and_stats(&client, schema, &queue).await;
    assert_eq!(reported, table, "after taskq's changes");
    queue.retry(failed_id).await.unwrap();
    assert_eq!(
        queue.purge(State::Succeeded, Duration::ZERO).await.unwrap(),
        1
    );
    let (table, reported) = counts_by_table_and_stats(&client, schema, &queue).await;
    assert_eq!(reported, table, "after a retry and a purge");
    assert_eq!(count_rows(&client, schema).await, 0, "still no count rows");

    // By hand: state changes, a delete, a counted task made uncounted and
    // an uncounted one made counted (the triggers count what is counted).
    insert_by_hand(&client, schema, "a").await;
    let by_hand = format!(
        "UPDATE {schema}.taskq_tasks SET state = 'failed', finished_at = now()
             WHERE id = (SELECT min(id) FROM {schema}.taskq_tasks WHERE state = 'queued' AND NOT counted);
         DELETE FROM {schema}.taskq_tasks
             WHERE id = (SELECT max(id) FROM {schema}.taskq_tasks WHERE state = 'queued' AND NOT counted);
         UPDATE {schema}.taskq_tasks SET counted = true
             WHERE id = (SELECT min(id) FROM {schema}.taskq_tasks WHERE state = 'queued' AND NOT counted);
         UPDATE {schema}.taskq_tasks SET counted = false, action = 'b'
             WHERE id = (SELECT max(id) FROM {schema}.taskq_tasks WHERE counted);"
    );
    client.batch_execute(&by_hand).await.unwrap();
    let (table, reported) = counts_by_table_and_stats(&client, schema, &queue).await;
    assert_eq!(reported, table, "after changes by hand");
    let ready: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {schema}.taskq_tasks WHERE action = 'a' AND state = 'queued'"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(queue.len("a").await.unwrap(), ready as u64);

    // Many uncounted tasks (inserted by hand, as a single enqueue would
    // insert them): adopted by the next fold down to 10,000 at most,
    // the counts exact throughout.
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, counted)
                 SELECT 'c', '\\x7b7d', 'queued', now(), 10, 1000000, false FROM generate_series(1, 10500)"
            ),
            &[],
        )
        .await
        .unwrap();
    queue.enqueue("c", &0).await.unwrap();
    let uncounted = format!("SELECT count(*) FROM {schema}.taskq_tasks WHERE NOT counted");
    until_count_at_most(&client, &uncounted, 10_000, "adopted down to 10,000").await;
    let (table, reported) = counts_by_table_and_stats(&client, schema, &queue).await;
    assert_eq!(reported, table, "after the adoption");
    assert_eq!(queue.len("c").await.unwrap(), 10_501);
}

/// A taskq of the previous schema version (2), still running during an
/// upgrade, appends its count rows to `taskq_counts` and marks its
/// statements with `taskq.counted`, which the current triggers do not
/// heed: they count its changes row by row, its rows are never read and
/// the backend empties them, and the counts stay exact.
#[tokio::test]
async fn changes_by_the_previous_version_are_counted_by_the_triggers() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let client = raw_client().await;
    let schema = &db.schema;
    // The previous version's statements, as it sent them.
    let old_insert = format!(
        "WITH counted AS (
             INSERT INTO {schema}.taskq_counts (action, state, n)
             SELECT 'a', 'queued', 1 WHERE (SELECT set_config('taskq.counted', 'on', true)) = 'on'
             RETURNING action
         )
         INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us)
         SELECT action, '\\x7b7d', 'queued', now(), 10, 60000000 FROM counted
         RETURNING id"
    );
    let old_claim = format!(
        "WITH claimed AS (
             UPDATE {schema}.taskq_tasks
             SET state = 'running', tries = tries + 1, expires = now() + interval '1 minute'
             WHERE id = $1 AND (SELECT set_config('taskq.counted', 'on', true)) = 'on'
             RETURNING action
         ), counted AS (
             INSERT INTO {schema}.taskq_counts (action, state, n)
             SELECT action, 'queued', -count(*) FROM claimed GROUP BY action
             UNION ALL
             SELECT action, 'running', count(*) FROM claimed GROUP BY action
         )
         SELECT 1 FROM claimed"
    );
    let old_complete = format!(
        "WITH completed AS (
             DELETE FROM {schema}.taskq_tasks
             WHERE id = $1 AND (SELECT set_config('taskq.counted', 'on', true)) = 'on'
             RETURNING action
         ), counted AS (
             INSERT INTO {schema}.taskq_counts (action, state, n)
             SELECT action, 'running', -count(*) FROM completed GROUP BY action
         )
         SELECT 1 FROM completed"
    );
    let uncounted = queue.enqueue("a", &1).await.unwrap().0;
    let counted: i64 = client.query_one(&old_insert, &[]).await.unwrap().get(0);
    let _ = client.query_one(&old_insert, &[]).await.unwrap();
    for (step, sql, id) in [
        ("an old claim of an uncounted task", &old_claim, uncounted),
        ("an old claim of a counted task", &old_claim, counted),
        ("an old completion", &old_complete, counted),
        (
            "an old completion of an uncounted task",
            &old_complete,
            uncounted,
        ),
    ] {
        assert_eq!(client.execute(sql, &[&id]).await.unwrap(), 1, "{step}");
        let (table, reported) = counts_by_table_and_stats(&client, schema, &queue).await;
        assert_eq!(reported, table, "after {step}");
    }
    assert_eq!(queue.len("a").await.unwrap(), 1);
    // Changes make the backend fold at its next tick.
    queue.enqueue("b", &1).await.unwrap();
    let legacy = format!("SELECT count(*) FROM {schema}.taskq_counts");
    until_count_at_most(
        &client,
        &legacy,
        0,
        "the previous version's count rows are emptied",
    )
    .await;
}

/// The plan PostgreSQL picks for one of taskq's statements, as a prepared
/// statement would run it: a custom plan, or the generic one it falls back
/// to after five executions.
async fn plan(
    client: &tokio_postgres::Client,
    schema: &str,
    (sql, types, args): (&str, &str, &str),
    generic: bool,
) -> String {
    let mode = if generic {
        "force_generic_plan"
    } else {
        "auto"
    };
    let sql = sql.replace("{schema}", &format!("\"{schema}\""));
    client
        .batch_execute(&format!(
            "DEALLOCATE ALL; SET plan_cache_mode = {mode};
             PREPARE statement({types}) AS {sql}"
        ))
        .await
        .unwrap();
    let rows = client
        .query(&format!("EXPLAIN EXECUTE statement({args})"), &[])
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A schema holding one task enqueued by taskq and 20,000 queued by
/// hand, of which the ids in `running` and in `failed` then move to those
/// states; the planner's statistics are taken before the moves (`stale`)
/// or after them.
async fn tasks_for_plans(
    running: (i64, i64),
    failed: (i64, i64),
    stale: bool,
) -> (PostgresDb, Queue, tokio_postgres::Client) {
    let db = postgres_db().await;
    let queue = db.queue().await;
    queue.enqueue("a", &1).await.unwrap();
    let client = raw_client().await;
    let schema = &db.schema;
    let analyze = format!("ANALYZE {schema}.taskq_tasks;");
    let (before, after) = if stale {
        (analyze.as_str(), "")
    } else {
        ("", analyze.as_str())
    };
    client
        .batch_execute(&format!(
            "INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us)
                 SELECT 'a', '\\x7b7d', 'queued', now(), 10, 60000000 FROM generate_series(1, 20000);
             {before}
             UPDATE {schema}.taskq_tasks SET state = 'running', expires = now() + interval '1 minute'
                 WHERE id BETWEEN {} AND {};
             UPDATE {schema}.taskq_tasks SET state = 'failed', finished_at = now()
                 WHERE id BETWEEN {} AND {};
             {after}",
            running.0, running.1, failed.0, failed.1
        ))
        .await
        .unwrap();
    (db, queue, client)
}

#[tokio::test]
async fn statements_read_only_the_tasks_they_need_however_many_run_or_failed() {
    // Statistics taken while no task ran or had failed, then many do: the
    // index of leases (every running task) or of finished tasks (every
    // failed one) must not stand in for the ids.
    let (db, _queue, client) = tasks_for_plans((1, 5000), (5001, 10000), true).await;
    let schema = &db.schema;
    let one = "bigint, bigint";
    let many = "bigint[], bigint[]";
    let statements = [
        (
            include_str!("../src/backend/postgres/sql/task_complete.sql"),
            one,
            "4001, 0",
        ),
        (
            include_str!("../src/backend/postgres/sql/task_complete_retain.sql"),
            one,
            "4001, 0",
        ),
        (
            include_str!("../src/backend/postgres/sql/task_extend.sql"),
            "bigint, bigint, bigint",
            "4001, 0, 1000",
        ),
        (
            include_str!("../src/backend/postgres/sql/task_fail.sql"),
            "bigint, bigint, text, bigint",
            "4001, 0, 'error', NULL",
        ),
        (
            include_str!("../src/backend/postgres/sql/task_release.sql"),
            "bigint, bigint, bigint, text",
            "4001, 0, 0, 'channel'",
        ),
        (
            include_str!("../src/backend/postgres/sql/task_complete_many.sql"),
            many,
            "'{4001,4002,4003}', '{0,0,0}'",
        ),
        (
            include_str!("../src/backend/postgres/sql/task_complete_many_retain.sql"),
            many,
            "'{4001,4002,4003}', '{0,0,0}'",
        ),
        (
            include_str!("../src/backend/postgres/sql/task_retry.sql"),
            "bigint, text",
            "9001, 'channel'",
        ),
    ];
    for statement in statements {
        for generic in [false, true] {
            let plan = plan(&client, schema, statement, generic).await;
            assert!(
                plan.contains("taskq_tasks_pkey")
                    && !plan.contains("taskq_tasks_leased")
                    && !plan.contains("taskq_tasks_finished"),
                "generic plan: {generic}, for\n{}\nreads:\n{plan}",
                statement.0
            );
        }
    }
    // A purge reads the finished tasks only, whatever state it is given.
    let purge = (
        include_str!("../src/backend/postgres/sql/task_purge.sql"),
        "text, bigint",
        "'failed', 0",
    );
    for generic in [false, true] {
        let plan = plan(&client, schema, purge, generic).await;
        assert!(
            plan.contains("taskq_tasks_finished") && !plan.contains("Seq Scan"),
            "purge, generic plan: {generic}, reads:\n{plan}"
        );
    }
}

/// The text of the list statement the backend sent last in `schema`, as
/// the server saw it.
async fn last_list_statement(client: &tokio_postgres::Client, schema: &str) -> String {
    let row = client
        .query_one(
            "SELECT query FROM pg_stat_activity
             WHERE query LIKE '%ORDER BY id%LIMIT $4%' AND position($1 in query) > 0
             ORDER BY query_start DESC LIMIT 1",
            &[&schema],
        )
        .await
        .unwrap();
    let sql: String = row.get(0);
    assert!(sql.trim_end().ends_with("LIMIT $4"), "cut short: {sql}");
    sql
}

#[tokio::test]
async fn listing_a_state_few_tasks_are_in_reads_only_those() {
    let (db, queue, client) = tasks_for_plans((100, 104), (19000, 19009), false).await;
    let schema = &db.schema;
    let types = "text, text, bigint, bigint";
    // (state, action, what the plan reads, how many the page holds)
    let cases = [
        (Some(State::Failed), None, "taskq_tasks_finished", 10),
        (Some(State::Failed), Some("a"), "taskq_tasks_finished", 10),
        (Some(State::Running), None, "taskq_tasks_leased", 5),
        (Some(State::Queued), None, "taskq_tasks_pkey", 50),
        (None, Some("a"), "taskq_tasks_pkey", 50),
    ];
    for (state, action, index, count) in cases {
        for order in [taskq::Order::OldestFirst, taskq::Order::NewestFirst] {
            let options = taskq::ListOptions {
                action: action.map(str::to_owned),
                state,
                order,
                limit: 50,
                ..Default::default()
            };
            let page = queue.list(&options).await.unwrap();
            assert_eq!(page.len(), count, "{options:?}");
            assert!(page.iter().all(|t| state.is_none_or(|s| t.state == s)));
            let sql = last_list_statement(&client, schema).await;
            let start = match order {
                taskq::Order::OldestFirst => i64::MIN,
                taskq::Order::NewestFirst => i64::MAX,
            };
            let args = format!(
                "{}, {}, {start}, 50",
                action.map_or("NULL".to_owned(), |a| format!("'{a}'")),
                state.map_or("NULL".to_owned(), |s| format!("'{s}'"))
            );
            for generic in [false, true] {
                let plan = plan(&client, schema, (&sql, types, &args), generic).await;
                assert!(
                    plan.contains(index) && !plan.contains("Seq Scan"),
                    "{options:?}, generic plan: {generic}, reads:\n{plan}"
                );
            }
        }
    }
}
