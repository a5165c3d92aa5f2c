//! The raw limits: what the database itself does with the same driver,
//! table, indexes, disk and durability setting, without taskq.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};
use taskq::sqlite::{self, SqliteConfig};

use crate::report::Run;

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn payload(i: usize) -> Vec<u8> {
    format!("{{\"i\":{i},\"t\":{}}}", now_micros()).into_bytes()
}

fn rate(n: usize, started: Instant) -> Run {
    Run {
        rate: Some(n as f64 / started.elapsed().as_secs_f64()),
        ..Run::default()
    }
}

const SQLITE_INSERT: &str = "INSERT INTO taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, created_at) \
     VALUES ('bench', ?1, 'queued', ?2, 10, 120000000, ?2)";

/// A connection with taskq's settings and tables, in a new file, without
/// taskq's triggers (they keep the task counts): the raw database does
/// only what each statement says.
pub fn sqlite_open(path: &Path, config: &SqliteConfig) -> Connection {
    let conn = Connection::open(path).expect("open the raw SQLite file");
    sqlite::configure_connection(&conn, config).expect("configure");
    sqlite::migrate_in(&conn).expect("create the tables");
    let triggers: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'taskq_tasks'",
        )
        .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
        .expect("list the triggers");
    for trigger in triggers {
        conn.execute_batch(&format!("DROP TRIGGER \"{trigger}\""))
            .expect("drop a trigger");
    }
    conn
}

/// Single-row INSERTs, one transaction each.
pub fn sqlite_insert_single(path: &Path, config: &SqliteConfig, n: usize) -> Run {
    let conn = sqlite_open(path, config);
    let started = Instant::now();
    for i in 0..n {
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.prepare_cached(SQLITE_INSERT)
            .unwrap()
            .execute(params![payload(i), now_micros()])
            .unwrap();
        conn.execute_batch("COMMIT").unwrap();
    }
    rate(n, started)
}

/// `n` INSERTs in one transaction.
pub fn sqlite_insert_bulk(path: &Path, config: &SqliteConfig, n: usize) -> Run {
    let conn = sqlite_open(path, config);
    let started = Instant::now();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    {
        let mut statement = conn.prepare_cached(SQLITE_INSERT).unwrap();
        for i in 0..n {
            statement
                .execute(params![payload(i), now_micros()])
                .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    rate(n, started)
}

/// Claim-then-delete of the first ready row in the order of the ready
/// index (priority, not-before, id), one transaction per task, over `n`
/// pre-loaded rows.
pub fn sqlite_claim_delete(path: &Path, config: &SqliteConfig, n: usize) -> Run {
    let conn = sqlite_open(path, config);
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in 0..n {
        conn.prepare_cached(SQLITE_INSERT)
            .unwrap()
            .execute(params![payload(i), now_micros()])
            .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    let started = Instant::now();
    let mut done = 0;
    loop {
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let id: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM taskq_tasks WHERE action = 'bench' AND state = 'queued' AND not_before <= ?1 \
                 ORDER BY priority, not_before, id LIMIT 1",
            )
            .unwrap()
            .query_row(params![now_micros()], |row| row.get(0))
            .ok();
        let Some(id) = id else {
            conn.execute_batch("COMMIT").unwrap();
            break;
        };
        conn.prepare_cached("DELETE FROM taskq_tasks WHERE id = ?1")
            .unwrap()
            .execute(params![id])
            .unwrap();
        conn.execute_batch("COMMIT").unwrap();
        done += 1;
    }
    assert_eq!(done, n);
    rate(n, started)
}

/// A connection of its own to the server at `url`.
pub(crate) async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

/// Turns off taskq's triggers (they keep the task counts) on the fresh
/// schema of a raw run: the raw database does only what each statement
/// says.
async fn pg_without_triggers(url: &str, schema: &str) {
    pg_client(url)
        .await
        .batch_execute(&format!(
            "ALTER TABLE \"{schema}\".taskq_tasks DISABLE TRIGGER USER"
        ))
        .await
        .expect("disable the triggers");
}

fn pg_insert(schema: &str) -> String {
    format!(
        "INSERT INTO \"{schema}\".taskq_tasks (action, payload, state, not_before, max_tries, timeout_us) \
         VALUES ('bench', $1, 'queued', now(), 10, 120000000)"
    )
}

/// Single-row INSERT statements, each its own transaction, from
/// `clients` connections at once.
pub async fn pg_insert_single(url: &str, schema: &str, n: usize, clients: usize) -> Run {
    pg_without_triggers(url, schema).await;
    let sql = Arc::new(pg_insert(schema));
    let mut connections = Vec::new();
    for _ in 0..clients {
        connections.push(pg_client(url).await);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, client) in connections.into_iter().enumerate() {
        let sql = Arc::clone(&sql);
        tasks.push(tokio::spawn(async move {
            let statement = client.prepare(&sql).await.unwrap();
            for i in (c..n).step_by(clients) {
                client.execute(&statement, &[&payload(i)]).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    rate(n, started)
}

/// `n` rows as INSERT statements of `batch` rows each.
pub async fn pg_insert_bulk(url: &str, schema: &str, n: usize, batch: usize) -> Run {
    pg_without_triggers(url, schema).await;
    let client = pg_client(url).await;
    let sql = format!(
        "INSERT INTO \"{schema}\".taskq_tasks (action, payload, state, not_before, max_tries, timeout_us) \
         SELECT 'bench', p, 'queued', now(), 10, 120000000 FROM unnest($1::bytea[]) AS u(p)"
    );
    let statement = client.prepare(&sql).await.unwrap();
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let rows: Vec<Vec<u8>> = (i..(i + batch).min(n)).map(payload).collect();
        client.execute(&statement, &[&rows]).await.unwrap();
        i += batch;
    }
    rate(n, started)
}

/// Claim-then-delete of the oldest ready row as one statement per
/// transaction (`SKIP LOCKED`), from `clients` connections, over `n`
/// pre-loaded rows.
pub async fn pg_claim_delete(url: &str, schema: &str, n: usize, clients: usize) -> Run {
    pg_insert_bulk(url, schema, n, 1000).await;
    let sql = Arc::new(format!(
        "DELETE FROM \"{schema}\".taskq_tasks WHERE id = (\
             SELECT id FROM \"{schema}\".taskq_tasks \
             WHERE action = 'bench' AND state = 'queued' AND not_before <= now() \
             ORDER BY priority, not_before, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
    ));
    let mut connections = Vec::new();
    for _ in 0..clients {
        connections.push(pg_client(url).await);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in connections {
        let sql = Arc::clone(&sql);
        tasks.push(tokio::spawn(async move {
            let statement = client.prepare(&sql).await.unwrap();
            let mut done = 0usize;
            while !client.query(&statement, &[]).await.unwrap().is_empty() {
                done += 1;
            }
            done
        }));
    }
    let mut done = 0;
    for task in tasks {
        done += task.await.unwrap();
    }
    assert_eq!(done, n);
    rate(n, started)
}
