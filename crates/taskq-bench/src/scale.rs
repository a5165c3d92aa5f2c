//! The scale check: drain rate, claim latency, `len`, `stats` and a page
//! of the failed tasks with 10,000 queued tasks, then with a million queued
//! and a million finished.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rusqlite::params;

use crate::report::{percentile, Figure, Run, Target};
use crate::{workloads, Database, Fresh};

const DRAIN: usize = 5_000;
const SAMPLES: usize = 200;
/// Failed tasks added after the queued ones: few, and the newest.
const FAILED: usize = 10;

/// Adds `finished` succeeded tasks, `queued` ready ones and [`FAILED`]
/// failed ones, in that order, with SQL.
async fn fill(backend: &Database, fresh: &Fresh, queued: usize, finished: usize) {
    match backend {
        Database::Sqlite { .. } => {
            let path = fresh.path.clone().expect("a SQLite file");
            tokio::task::spawn_blocking(move || {
                let conn = rusqlite::Connection::open(path).expect("open");
                conn.busy_timeout(Duration::from_secs(30)).expect("busy timeout");
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros() as i64)
                    .unwrap_or(0);
                let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                     INSERT INTO taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, created_at, finished_at) \
                     SELECT 'bench', CAST('{\"i\":0,\"t\":0}' AS BLOB), ?2, ?3, 10, 120000000, ?3, \
                            CASE WHEN ?2 <> 'queued' THEN ?3 END FROM n";
                conn.execute(sql, params![finished as i64, "succeeded", now]).expect("fill finished");
                conn.execute(sql, params![queued as i64, "queued", now]).expect("fill queued");
                conn.execute(sql, params![FAILED as i64, "failed", now]).expect("fill failed");
            })
            .await
            .expect("filled");
            // The next insert counts the tasks the fill left above the
            // count mark into the kept counts, as it would after tasks
            // inserted by another program (see the SQLite migration 0003).
            fresh
                .queue
                .enqueue("bench", &0)
                .await
                .expect("count the fill");
        }
        Database::Postgres { url, .. } => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(connection);
            let schema = fresh.schema.as_deref().expect("a schema");
            // Tallied in bulk the way taskq's own statements tally (see
            // the PostgreSQL migrations 0002 and 0003), not row by row by
            // triggers.
            let sql = format!(
                "WITH inserted AS ( \
                     INSERT INTO \"{schema}\".taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, finished_at) \
                     SELECT 'bench', convert_to('{{\"i\":0,\"t\":0}}', 'UTF8'), $2::text, now(), 10, 120000000, \
                            CASE WHEN $2::text <> 'queued' THEN now() END FROM generate_series(1, $1::bigint) \
                     WHERE (SELECT set_config('taskq.tallied', 'on', true)) = 'on' \
                     RETURNING action, state \
                 ), counted AS ( \
                     INSERT INTO \"{schema}\".taskq_tallies (action, state, n) \
                     SELECT action, state, count(*) FROM inserted GROUP BY action, state \
                 ) SELECT 1"
            );
            client
                .execute(&sql, &[&(finished as i64), &"succeeded"])
                .await
                .expect("fill finished");
            client
                .execute(&sql, &[&(queued as i64), &"queued"])
                .await
                .expect("fill queued");
            client
                .execute(&sql, &[&(FAILED as i64), &"failed"])
                .await
                .expect("fill failed");
            client
                .batch_execute(&format!("ANALYZE \"{schema}\".taskq_tasks"))
                .await
                .expect("analyze");
        }
    }
}

async fn timings<F, Fut>(mut op: F) -> Run
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES / 10 {
        let started = Instant::now();
        op().await;
        samples.push(started.elapsed());
    }
    samples.sort();
    Run {
        p50: Some(percentile(&samples, 0.5)),
        p99: Some(percentile(&samples, 0.99)),
        ..Run::default()
    }
}

/// One size: the drain rate and the claim, `len`, `stats` and list timings,
/// then (when `to_empty`) the rate and peak memory of working off every
/// task left.
async fn measure(backend: &Database, queued: usize, finished: usize, to_empty: bool) -> [Run; 6] {
    let fresh = backend.fresh().await;
    fill(backend, &fresh, queued, finished).await;
    let queue = &fresh.queue;
    let mut claims = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let lease = queue.claim("bench").await.expect("claim").expect("a task");
        claims.push(started.elapsed());
        lease.complete().await.expect("complete");
    }
    claims.sort();
    let claim = Run {
        p50: Some(percentile(&claims, 0.5)),
        p99: Some(percentile(&claims, 0.99)),
        ..Run::default()
    };
    crate::report::reset_peak_rss();
    let mut drain = workloads::drain(queue, DRAIN, 8).await;
    drain.peak_rss = crate::report::peak_rss();
    let len = timings(|| async {
        queue.len("bench").await.expect("len");
    })
    .await;
    let stats = timings(|| async {
        queue.stats().await.expect("stats");
    })
    .await;
    let failed = taskq::ListOptions {
        state: Some(taskq::State::Failed),
        ..taskq::ListOptions::default()
    };
    let list = timings(|| async {
        let page = queue.list(&failed).await.expect("list");
        assert_eq!(page.len(), FAILED, "the failed tasks");
    })
    .await;
    let mut rest = Run::default();
    if to_empty {
        crate::report::reset_peak_rss();
        // The first drain may have completed a few more than it counted.
        let left = queue.len("bench").await.expect("len") as usize;
        rest = workloads::drain(queue, left, 8).await;
        rest.peak_rss = crate::report::peak_rss();
    }
    backend.dispose(fresh).await;
    [drain, claim, len, stats, list, rest]
}

/// A label that names the large size as measured.
fn label(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

pub async fn check(backend: &Database, rows: usize, progress: &ProgressBar) -> Vec<Figure> {
    let name = backend.name();
    let big = if rows.is_multiple_of(1_000_000) {
        format!("{}M", rows / 1_000_000)
    } else {
        format!("{}k", rows / 1_000)
    };
    let at_big = |what: &str| label(format!("{what} @ {big} queued + {big} finished"));
    progress.set_message(format!("{name} scale check, 10,000 queued"));
    let [small_drain, small_claim, small_len, small_stats, small_list, _] =
        measure(backend, 10_000, 0, false).await;
    progress.set_message(format!(
        "{name} scale check, {rows} queued and {rows} finished"
    ));
    let [big_drain, big_claim, big_len, big_stats, big_list, big_rest] =
        measure(backend, rows, rows, true).await;
    let under_10ms = Target::Latency {
        p50_ms: 10.0,
        p99_ms: 10.0,
    };
    let info = Target::None;
    vec![
        Figure::from_runs(name, "drain-8 @ 10k queued", &[small_drain], info),
        Figure::from_runs(
            name,
            at_big("drain-8"),
            &[big_drain],
            Target::RatioOf {
                baseline: "drain-8 @ 10k queued",
                ratio: 0.8,
            },
        ),
        Figure::from_runs(name, "claim @ 10k queued", &[small_claim], info),
        Figure::from_runs(name, at_big("claim"), &[big_claim], info),
        Figure::from_runs(name, "len @ 10k queued", &[small_len], under_10ms),
        Figure::from_runs(name, at_big("len"), &[big_len], under_10ms),
        Figure::from_runs(name, "stats @ 10k queued", &[small_stats], under_10ms),
        Figure::from_runs(name, at_big("stats"), &[big_stats], under_10ms),
        Figure::from_runs(name, "list failed @ 10k queued", &[small_list], under_10ms),
        Figure::from_runs(name, at_big("list failed"), &[big_list], under_10ms),
        Figure::from_runs(
            name,
            label(format!("drain-8 of all {big} to empty")),
            &[big_rest],
            Target::PeakRss { mib: 64.0 },
        ),
    ]
}
