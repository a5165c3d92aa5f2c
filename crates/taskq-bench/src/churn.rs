//! The sustained-churn run (PostgreSQL): tasks enqueued one call each at a
//! steady rate and drained by a worker of 8 as fast as they come, for
//! minutes, while a sampler reads, every few seconds, the dead tuples and
//! size of each taskq table, the claim latency (from the enqueue call to
//! the handler's start) and the throughput. Optionally an idle transaction
//! that holds a transaction id pins the xmin horizon for a while, and four
//! readers in overlapping REPEATABLE READ transactions count the tasks
//! table over and over (the analytics-on-the-queue pattern), each for a
//! window of the run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use taskq::worker::{CancellationToken, TaskContext, Worker, WorkerConfig};
use taskq::Queue;

use crate::raw::pg_client;
use crate::report::percentile;
use crate::workloads::{self, Payload};
use crate::Database;

/// The sustained-churn run's settings (`--churn` and the flags after it).
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct ChurnArgs {
    /// Run the sustained-churn workload on PostgreSQL instead of the
    /// standard workloads: a steady enqueue and drain, with the dead
    /// tuples and size of each taskq table, the claim latency and the
    /// throughput sampled over time.
    #[arg(long)]
    pub(crate) churn: bool,
    /// Tasks enqueued per second, one enqueue call each.
    #[arg(long, default_value_t = 600)]
    churn_rate: u32,
    /// How long the churn runs, in seconds.
    #[arg(long, default_value_t = 600)]
    churn_seconds: u64,
    /// Seconds between two samples.
    #[arg(long, default_value_t = 10)]
    churn_every: u64,
    /// FROM:FOR, in seconds from the start: an idle transaction that holds
    /// a transaction id pins the xmin horizon for that window.
    #[arg(long, value_parser = window)]
    churn_pin: Option<Window>,
    /// FROM:FOR, in seconds from the start: four readers count the tasks
    /// table over and over (every 100 ms each) in overlapping REPEATABLE
    /// READ transactions of 20 s, for that window.
    #[arg(long, value_parser = window)]
    churn_readers: Option<Window>,
    /// Also draw the samples as a plot into this SVG file.
    #[arg(long)]
    pub(crate) churn_svg: Option<PathBuf>,
}

/// A window of the run, in seconds from its start.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Window {
    pub(crate) from: u64,
    pub(crate) length: u64,
}

impl Window {
    fn holds(&self, at: f64) -> bool {
        at >= self.from as f64 && at < (self.from + self.length) as f64
    }
}

fn window(text: &str) -> Result<Window, String> {
    let (from, length) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not FROM:FOR (seconds), for example 120:240"))?;
    let seconds = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{s:?} is not a whole number of seconds"))
    };
    Ok(Window {
        from: seconds(from)?,
        length: seconds(length)?,
    })
}

/// One taskq table at one moment.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TableSample {
    pub(crate) table: String,
    pub(crate) live: i64,
    pub(crate) dead: i64,
    pub(crate) bytes: i64,
    pub(crate) vacuums: i64,
    pub(crate) autovacuums: i64,
}

/// What the sampler read at one moment, about the time since the last.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Sample {
    /// Seconds from the start.
    pub(crate) at: f64,
    pub(crate) pinned: bool,
    pub(crate) readers: bool,
    pub(crate) enqueued_per_s: f64,
    pub(crate) completed_per_s: f64,
    pub(crate) claim_p50_ms: f64,
    pub(crate) claim_p99_ms: f64,
    pub(crate) tables: Vec<TableSample>,
}

impl Sample {
    /// The sample of `table`, if the schema has it.
    pub(crate) fn table(&self, table: &str) -> Option<&TableSample> {
        self.tables.iter().find(|t| t.table == table)
    }
}

/// The whole run: its settings and samples.
#[derive(Debug, Serialize)]
pub(crate) struct Churn {
    pub(crate) rate: u32,
    pub(crate) seconds: u64,
    pub(crate) pin: Option<Window>,
    pub(crate) readers: Option<Window>,
    pub(crate) samples: Vec<Sample>,
}

/// Runs the churn on a fresh schema of `database` (PostgreSQL only).
pub(crate) async fn run(database: &Database, args: &ChurnArgs) -> Churn {
    let Database::Postgres { url, .. } = database else {
        eprintln!("taskq-bench: --churn runs on PostgreSQL only (--backend postgres)");
        std::process::exit(2);
    };
    let fresh = database.fresh().await;
    let schema = fresh.schema.clone().expect("a PostgreSQL schema");
    let started = Instant::now();
    let stop = CancellationToken::new();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let worker = spawn_worker(&fresh.queue, Arc::clone(&waits), stop.clone());
    let enqueued = Arc::new(AtomicU64::new(0));
    let producer = tokio::spawn(produce(
        fresh.queue.clone(),
        args.churn_rate,
        Arc::clone(&enqueued),
        stop.clone(),
    ));
    let mut side = Vec::new();
    if let Some(pin) = args.churn_pin {
        side.push(tokio::spawn(pin_xmin(url.clone(), pin, started)));
    }
    if let Some(readers) = args.churn_readers {
        for n in 0..4 {
            let (url, schema) = (url.clone(), schema.clone());
            side.push(tokio::spawn(read(url, schema, readers, started, n)));
        }
    }
    let sampler = Sampler::connect(url, &schema).await;
    let samples = sampler
        .run(args, started, &enqueued, &worker.0, &waits)
        .await;
    stop.cancel();
    for task in side {
        task.abort();
    }
    producer.await.expect("the producer ran");
    worker
        .1
        .await
        .expect("the worker ran")
        .expect("the worker stopped");
    database.dispose(fresh).await;
    Churn {
        rate: args.churn_rate,
        seconds: args.churn_seconds,
        pin: args.churn_pin,
        readers: args.churn_readers,
        samples,
    }
}

type Running = tokio::task::JoinHandle<taskq::Result<()>>;

/// A worker of 8 whose handler records how long each task waited.
fn spawn_worker(
    queue: &Queue,
    waits: Arc<Mutex<Vec<Duration>>>,
    stop: CancellationToken,
) -> (Arc<taskq::worker::WorkerMetrics>, Running) {
    let config = WorkerConfig {
        concurrency: 8,
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(queue.clone(), config);
    worker
        .handle("bench", move |payload: Payload, _ctx: TaskContext| {
            let waited = workloads::now_micros() - payload.t;
            waits
                .lock()
                .unwrap()
                .push(Duration::from_micros(waited.max(0) as u64));
            async { Ok::<_, std::convert::Infallible>(()) }
        })
        .expect("register");
    let metrics = worker.metrics();
    (
        metrics,
        tokio::spawn(worker.run_until(stop.cancelled_owned())),
    )
}

/// Enqueues `rate` tasks a second, one call each, paced every 5 ms by
/// what is owed so far, until stopped.
async fn produce(queue: Queue, rate: u32, enqueued: Arc<AtomicU64>, stop: CancellationToken) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut sent = 0u64;
    while !stop.is_cancelled() {
        tick.tick().await;
        let owed = (started.elapsed().as_secs_f64() * f64::from(rate)) as u64;
        while sent < owed && !stop.is_cancelled() {
            queue
                .enqueue_task(workloads::task(sent as usize))
                .await
                .expect("enqueue");
            sent += 1;
            enqueued.store(sent, Ordering::Relaxed);
        }
    }
}

async fn sleep_until(started: Instant, at: u64) {
    tokio::time::sleep_until((started + Duration::from_secs(at)).into()).await;
}

/// Holds a transaction with a transaction id open, idle, for `pin`.
async fn pin_xmin(url: String, pin: Window, started: Instant) {
    sleep_until(started, pin.from).await;
    let client = pg_client(&url).await;
    client
        .batch_execute("BEGIN; SELECT txid_current();")
        .await
        .expect("pin the xmin horizon");
    sleep_until(started, pin.from + pin.length).await;
    client.batch_execute("COMMIT").await.expect("unpin");
}

/// One of four readers: REPEATABLE READ transactions of 20 s, started 5 s
/// apart so that they overlap, each counting the tasks table every 100 ms.
async fn read(url: String, schema: String, readers: Window, started: Instant, n: u64) {
    sleep_until(started, readers.from).await;
    tokio::time::sleep(Duration::from_secs(5 * n)).await;
    let client = pg_client(&url).await;
    let end = started + Duration::from_secs(readers.from + readers.length);
    let count = format!("SELECT count(*) FROM \"{schema}\".taskq_tasks");
    while Instant::now() < end {
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .await
            .expect("begin a reader");
        let until = (Instant::now() + Duration::from_secs(20)).min(end);
        while Instant::now() < until {
            client.query_one(&count, &[]).await.expect("count");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client.batch_execute("COMMIT").await.expect("end a reader");
    }
}

/// Reads the tables' statistics on a connection of its own.
struct Sampler {
    client: tokio_postgres::Client,
    statement: String,
    schema: String,
}

impl Sampler {
    async fn connect(url: &str, schema: &str) -> Sampler {
        let statement =
            "SELECT relname::text, n_live_tup, n_dead_tup, pg_total_relation_size(relid), \
                         vacuum_count, autovacuum_count \
                         FROM pg_stat_user_tables WHERE schemaname = $1 ORDER BY relname"
                .to_owned();
        Sampler {
            client: pg_client(url).await,
            statement,
            schema: schema.to_owned(),
        }
    }

    async fn tables(&self) -> Vec<TableSample> {
        let rows = self
            .client
            .query(&self.statement, &[&self.schema])
            .await
            .expect("read the table statistics");
        rows.iter()
            .map(|row| TableSample {
                table: row.get(0),
                live: row.get(1),
                dead: row.get(2),
                bytes: row.get(3),
                vacuums: row.get(4),
                autovacuums: row.get(5),
            })
            .collect()
    }

    /// Samples every `every` seconds until the run's time is up.
    async fn run(
        &self,
        args: &ChurnArgs,
        started: Instant,
        enqueued: &AtomicU64,
        metrics: &taskq::worker::WorkerMetrics,
        waits: &Mutex<Vec<Duration>>,
    ) -> Vec<Sample> {
        let every = Duration::from_secs(args.churn_every.max(1));
        let mut samples = Vec::new();
        let (mut last_enqueued, mut last_completed, mut last_at) = (0u64, 0u64, 0.0);
        let mut at = every;
        while at <= Duration::from_secs(args.churn_seconds) {
            tokio::time::sleep_until((started + at).into()).await;
            let now = started.elapsed().as_secs_f64();
            let (enq, done) = (
                enqueued.load(Ordering::Relaxed),
                metrics.snapshot().completed,
            );
            let mut window = std::mem::take(&mut *waits.lock().unwrap());
            window.sort();
            let ms = |q| percentile(&window, q).as_secs_f64() * 1000.0;
            let span = now - last_at;
            let sample = Sample {
                at: now,
                pinned: args.churn_pin.is_some_and(|w| w.holds(now - 1.0)),
                readers: args.churn_readers.is_some_and(|w| w.holds(now - 1.0)),
                enqueued_per_s: (enq - last_enqueued) as f64 / span,
                completed_per_s: (done - last_completed) as f64 / span,
                claim_p50_ms: ms(0.50),
                claim_p99_ms: ms(0.99),
                tables: self.tables().await,
            };
            eprintln!("{}", crate::churn_report::line(&sample));
            samples.push(sample);
            (last_enqueued, last_completed, last_at) = (enq, done, now);
            at += every;
        }
        samples
    }
}
