//! Control over tasks, PostgreSQL only: cancellations heard through
//! NOTIFY, unique keys in the caller's transaction, the upgrade from the
//! schema before them, and claims that never read waiting tasks.

use super::*;

use taskq::worker::{Outcome, StopReason, TaskContext, Worker, WorkerConfig};
use taskq::CancelOutcome;

#[tokio::test]
async fn a_running_handler_in_another_process_hears_its_cancellation_at_once() {
    let db = postgres_db().await;
    // Polls every 30 s and beats every 20 s: only NOTIFY is this quick.
    let slow = QueueConfig {
        poll_interval: Duration::from_secs(30),
        ..QueueConfig::default()
    };
    let workers = db.queue_with(slow).await;
    let canceller = db.queue().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut worker = Worker::new(workers.clone(), WorkerConfig::default());
    worker
        .handle("far", move |_: u32, ctx: TaskContext| {
            let tx = tx.clone();
            async move {
                tx.send(None).unwrap();
                ctx.cancelled().await;
                tx.send(ctx.stop_reason()).unwrap();
                Ok::<_, String>(Outcome::cancel("stopped on request"))
            }
        })
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    let task = NewTask::json("far", &1)
        .unwrap()
        .timeout(Duration::from_secs(60));
    let id = canceller.enqueue_task(task).await.unwrap().id;
    let started = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
    assert_eq!(started.unwrap(), Some(None));
    // Asked by another process: queues of this one share their wake-ups,
    // and would hear it without NOTIFY.
    let asked = std::time::Instant::now();
    let child_id = id.0.to_string();
    let child = super::processes::spawn_child_with(
        &db,
        "processes::child_canceller",
        &[("TASKQ_TEST_CHILD_ID", &child_id)],
    );
    let said = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(said.status.success());
    let said = String::from_utf8(said.stdout).unwrap();
    assert!(
        said.contains(&format!("CANCELLED {:?}", CancelOutcome::Requested)),
        "{said}"
    );
    let heard = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    assert_eq!(heard.unwrap(), Some(Some(StopReason::Cancelled)));
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "heard through NOTIFY, not a heartbeat: {:?}",
        asked.elapsed()
    );
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    let task = canceller.get(id).await.unwrap().unwrap();
    assert_eq!(task.state, State::Cancelled);
    assert_eq!(task.last_error.as_deref(), Some("stopped on request"));
}

#[tokio::test]
async fn a_duplicate_in_the_callers_transaction_follows_it() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let mut client = raw_client().await;
    let keyed = |n: u32| NewTask::json("sync", &n).unwrap().unique_key("c:1");
    // Added in a transaction that rolls back: nothing is left, and the key
    // is free again.
    let tx = client.transaction().await.unwrap();
    let first = postgres::enqueue_in(&tx, &db.schema, &keyed(1))
        .await
        .unwrap();
    let again = postgres::enqueue_in(&tx, &db.schema, &keyed(2))
        .await
        .unwrap();
    assert!(!first.duplicate && again.duplicate && again.id == first.id);
    tx.rollback().await.unwrap();
    assert!(queue.get(first.id).await.unwrap().is_none());
    assert!(queue.stats().await.unwrap().is_empty());
    let stored = queue.enqueue_task(keyed(3)).await.unwrap();
    assert!(!stored.duplicate);
    // A duplicate of a committed task inside a transaction names it.
    let tx = client.transaction().await.unwrap();
    let many = postgres::enqueue_many_in(&tx, &db.schema, &[keyed(4), keyed(5)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(many.iter().all(|e| e.duplicate && e.id == stored.id));
    assert_eq!(queue.len("sync").await.unwrap(), 1);
}

/// FNV-1a, as taskq fingerprints its migrations.
fn checksum(sql: &str) -> i64 {
    sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    }) as i64
}

/// A schema at version 3, the last before unique keys and cancellation,
/// with tasks in every state it knows.
async fn schema_at_version_3(client: &tokio_postgres::Client, schema: &str) {
    let quoted = format!("\"{schema}\"");
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {quoted};
             CREATE TABLE {quoted}.taskq_migrations (version bigint PRIMARY KEY, name text NOT NULL,
                 checksum bigint NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await
        .unwrap();
    let old = [
        (
            1,
            "create_tasks",
            include_str!("../../src/backend/postgres/migrations/0001_create_tasks.sql"),
        ),
        (
            2,
            "count_tasks",
            include_str!("../../src/backend/postgres/migrations/0002_count_tasks.sql"),
        ),
        (
            3,
            "uncounted_inserts",
            include_str!("../../src/backend/postgres/migrations/0003_uncounted_inserts.sql"),
        ),
    ];
    for (version, name, sql) in old {
        client
            .batch_execute(&sql.replace("{schema}", &quoted))
            .await
            .unwrap();
        client
            .execute(
                &format!("INSERT INTO {quoted}.taskq_migrations (version, name, checksum) VALUES ($1, $2, $3)"),
                &[&(version as i64), &name, &checksum(sql)],
            )
            .await
            .unwrap();
    }
    client
        .batch_execute(&format!(
            "INSERT INTO {quoted}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, expires, finished_at)
             VALUES ('a', '\\x31', 'queued', now(), 10, 60000000, NULL, NULL),
                    ('a', '\\x32', 'running', now(), 10, 60000000, now() + interval '1 minute', NULL),
                    ('a', '\\x33', 'failed', now(), 10, 60000000, NULL, now()),
                    ('b', '\\x34', 'queued', now() + interval '1 hour', 10, 60000000, NULL, NULL)"
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_schema_before_control_is_upgraded_with_its_tasks() {
    let db = PostgresDb::in_schema(fresh_schema());
    let client = raw_client().await;
    schema_at_version_3(&client, &db.schema).await;
    let queue = db.queue().await;
    let stats = queue.stats().await.unwrap();
    let a = &stats[0];
    assert_eq!((a.queued, a.running, a.failed, a.cancelled), (1, 1, 1, 0));
    assert_eq!(stats[1].queued, 1);
    // The old tasks take part in everything new.
    let lease = queue
        .claim("a")
        .await
        .unwrap()
        .expect("the old queued task");
    assert_eq!((lease.payload(), lease.task().priority), (&b"1"[..], 0));
    assert_eq!(
        queue.cancel(lease.id()).await.unwrap(),
        CancelOutcome::Requested
    );
    lease.fail("late").await.unwrap();
    let failed = queue
        .list(&taskq::ListOptions {
            state: Some(State::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    queue.retry(failed[0].id).await.unwrap();
    let upgraded = queue.stats().await.unwrap();
    assert_eq!((upgraded[0].queued, upgraded[0].cancelled), (1, 1));
    let version = client
        .query_one(
            &format!(
                "SELECT max(version) FROM \"{}\".taskq_migrations",
                db.schema
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(version.get::<_, i64>(0), postgres::SCHEMA_VERSION);
}

/// The shared buffers (pages) `sql` touches with the arguments `args`
/// (SQL literals), from its analyzed plan, run in a transaction that is
/// rolled back.
async fn pages_touched(client: &tokio_postgres::Client, sql: &str, types: &str, args: &str) -> i64 {
    let script = format!(
        "BEGIN; PREPARE measured ({types}) AS {sql};
         EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE measured ({args});
         ROLLBACK; DEALLOCATE measured;"
    );
    let messages = client.simple_query(&script).await.unwrap();
    let text = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap();
    let plan: serde_json::Value = serde_json::from_str(&text).unwrap();
    let top = &plan[0]["Plan"];
    top["Shared Hit Blocks"].as_i64().unwrap() + top["Shared Read Blocks"].as_i64().unwrap()
}

#[tokio::test]
async fn a_claim_reads_no_waiting_task_however_many_wait() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let client = raw_client().await;
    let schema = &db.schema;
    let claim_sql = include_str!("../../src/backend/postgres/sql/task_claim.sql")
        .replace("{schema}", &format!("\"{schema}\""));
    let ready = |n: usize| {
        format!(
            "INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, priority)
             SELECT 'a', '\\x7b7d', 'queued', now(), 10, 60000000, p % 3 FROM generate_series(1, {n}) AS p;
             ANALYZE {schema}.taskq_tasks;"
        )
    };
    let (types, args) = ("text, bigint, text", "'a', 10, '{}'");
    client.batch_execute(&ready(30)).await.unwrap();
    let without = pages_touched(&client, &claim_sql, types, args).await;
    // 100,000 tasks waiting an hour at the default priority.
    client
        .batch_execute(&format!(
            "INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, priority)
             SELECT 'a', '\\x7b7d', 'queued', now() + interval '1 hour', 10, 60000000, 0 FROM generate_series(1, 100000);
             ANALYZE {schema}.taskq_tasks;"
        ))
        .await
        .unwrap();
    let with = pages_touched(&client, &claim_sql, types, args).await;
    // Their entries of the ready index fill about 450 pages, which a
    // claim reading them would touch; a claim that does not touches a few
    // more than before (the deeper index, the counts of their inserts).
    assert!(
        with <= without + 200,
        "{without} pages before, {with} with 100,000 waiting"
    );
    let claimed = queue.claim_many("a", 40).await.unwrap();
    assert_eq!(claimed.len(), 30, "the ready ones, and no waiting one");
    assert_eq!(queue.len("a").await.unwrap(), 0);
}
