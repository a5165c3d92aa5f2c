//! `taskq-bench`: the standard workloads of DESIGN.md section 4 on SQLite
//! and PostgreSQL, each figure also given as a ratio to the raw limit of
//! the database measured in the same run. `./scripts/bench` runs it.

mod raw;
mod report;
mod scale;
mod workloads;

use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use taskq::postgres::{PostgresBackend, PostgresConfig};
use taskq::sqlite::{Durability, SqliteBackend, SqliteConfig};
use taskq::{Queue, QueueConfig};

use report::{Figure, Run, Target};

/// Runs the standard taskq workloads and the raw database limits, and
/// prints a table of medians and ratios.
#[derive(Debug, Parser)]
#[command(name = "taskq-bench")]
struct Args {
    /// sqlite, postgres or all.
    #[arg(long, default_value = "all")]
    backend: String,
    /// Runs of each workload; the table shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The PostgreSQL server (scripts/bench starts a throwaway one).
    #[arg(long, env = "TASKQ_BENCH_POSTGRES_URL", hide_env_values = true)]
    postgres_url: Option<String>,
    /// Where the SQLite files go (default: the system's temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// SQLite durability: power-loss (the default) or process-crash.
    #[arg(long, default_value = "power-loss")]
    durability: String,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Run the scale check instead of the workloads: drain rate, claim
    /// latency, `len`, `stats` and a page of the 10 failed tasks with
    /// 10,000 queued tasks, then with --scale-rows queued and as many
    /// finished.
    #[arg(long)]
    scale: bool,
    /// Queued (and finished) rows of the large scale check.
    #[arg(long, default_value_t = 1_000_000)]
    scale_rows: usize,
    /// Tiny sizes, to check that the benchmark runs; not for figures.
    #[arg(long)]
    quick: bool,
    /// Run only the workloads (and raw limits) whose names contain this,
    /// for example to profile one of them.
    #[arg(long)]
    only: Option<String>,
}

/// How many tasks each workload uses.
struct Sizes {
    single: usize,
    concurrent: usize,
    bulk: usize,
    raw_bulk: usize,
    drain: usize,
    latency: usize,
    latency_rate: u32,
}

const FULL: Sizes = Sizes {
    single: 5_000,
    concurrent: 5_000,
    bulk: 50_000,
    raw_bulk: 100_000,
    drain: 20_000,
    latency: 500,
    latency_rate: 50,
};

const QUICK: Sizes = Sizes {
    single: 100,
    concurrent: 100,
    bulk: 2_000,
    raw_bulk: 2_000,
    drain: 300,
    latency: 20,
    latency_rate: 200,
};

/// A database to measure: a fresh file or schema per run.
enum Backend {
    Sqlite { dir: PathBuf, config: SqliteConfig },
    Postgres { url: String },
}

/// One run's fresh database.
struct Fresh {
    queue: Queue,
    path: Option<PathBuf>,
    schema: Option<String>,
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", nanos ^ u128::from(std::process::id()))
}

/// A queue with default settings on the SQLite file at `path`.
async fn sqlite_queue(path: &std::path::Path, config: &SqliteConfig) -> Queue {
    let backend = SqliteBackend::open(path, config.clone())
        .await
        .expect("open SQLite");
    Queue::new(backend, QueueConfig::default()).expect("a queue")
}

/// A queue with default settings on `schema` of the server at `url`, with
/// a pool of `pool_size` connections.
async fn postgres_queue(url: &str, schema: &str, pool_size: usize) -> Queue {
    let config = PostgresConfig {
        schema: schema.to_owned(),
        pool_size,
        ..PostgresConfig::default()
    };
    let backend = PostgresBackend::connect(url, config)
        .await
        .expect("connect to PostgreSQL");
    Queue::new(backend, QueueConfig::default()).expect("a queue")
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    async fn fresh(&self) -> Fresh {
        match self {
            Backend::Sqlite { dir, config } => {
                let path = dir.join(format!("bench-{}.db", unique()));
                Fresh {
                    queue: sqlite_queue(&path, config).await,
                    path: Some(path),
                    schema: None,
                }
            }
            Backend::Postgres { url } => {
                let schema = format!("bench_{}", unique());
                Fresh {
                    queue: postgres_queue(url, &schema, 16).await,
                    path: None,
                    schema: Some(schema),
                }
            }
        }
    }

    /// Another queue, with its own connections, on `fresh`'s database.
    async fn another_queue(&self, fresh: &Fresh) -> Queue {
        match (self, &fresh.path, &fresh.schema) {
            (Backend::Sqlite { config, .. }, Some(path), _) => sqlite_queue(path, config).await,
            (Backend::Postgres { url }, _, Some(schema)) => postgres_queue(url, schema, 4).await,
            _ => unreachable!("a fresh database has a path or a schema"),
        }
    }

    async fn dispose(&self, fresh: Fresh) {
        drop(fresh.queue);
        if let Some(path) = fresh.path {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        if let (Backend::Postgres { url }, Some(schema)) = (self, fresh.schema) {
            if let Ok((client, connection)) =
                tokio_postgres::connect(url, tokio_postgres::NoTls).await
            {
                tokio::spawn(connection);
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                    .await;
            }
        }
    }
}

struct Bench {
    runs: usize,
    progress: ProgressBar,
    only: Option<String>,
}

/// One workload's runs so far, and what it is judged against.
struct Measured {
    workload: &'static str,
    runs: Vec<Run>,
    target: Target,
}

impl Bench {
    /// Runs `workload` once, on a fresh database.
    async fn measure<F, Fut>(&self, backend: &Backend, label: &str, mut workload: F) -> Vec<Run>
    where
        F: FnMut(Fresh) -> Fut,
        Fut: Future<Output = (Run, Fresh)>,
    {
        if self
            .only
            .as_deref()
            .is_some_and(|only| !label.contains(only))
        {
            return Vec::new();
        }
        self.progress
            .set_message(format!("{} {label}", backend.name()));
        let fresh = backend.fresh().await;
        report::reset_peak_rss();
        let (mut run, fresh) = workload(fresh).await;
        run.peak_rss = report::peak_rss();
        backend.dispose(fresh).await;
        self.progress.inc(1);
        vec![run]
    }

    /// Every workload and raw limit of `backend`, `runs` times. Each pass
    /// measures all of them once, so a raw limit and the figures compared
    /// with it are taken minutes apart at most, not a whole run apart.
    async fn backend(&self, backend: &Backend, sizes: &Sizes) -> Vec<Figure> {
        let mut measured: Vec<Measured> = Vec::new();
        for _ in 0..self.runs {
            for pass in bench_backend(self, backend, sizes).await {
                match measured.iter_mut().find(|m| m.workload == pass.workload) {
                    Some(m) => m.runs.extend(pass.runs),
                    None => measured.push(pass),
                }
            }
        }
        measured
            .into_iter()
            .map(|m| Figure::from_runs(backend.name(), m.workload, &m.runs, m.target))
            .collect()
    }
}

/// One pass: each workload and raw limit of `backend` once.
async fn bench_backend(bench: &Bench, backend: &Backend, sizes: &Sizes) -> Vec<Measured> {
    let mut measured = Vec::new();
    let mut add = |workload, runs: Vec<Run>, target| {
        if !runs.is_empty() {
            measured.push(Measured {
                workload,
                runs,
                target,
            });
        }
    };
    let ratio = |baseline, ratio| Target::RatioOf { baseline, ratio };

    match backend {
        Backend::Sqlite { config, .. } => {
            let n = sizes.single;
            let c = config.clone();
            let runs = bench
                .measure(backend, "raw-insert-single", |f| {
                    let c = c.clone();
                    async move {
                        let path = f.path.clone().unwrap().with_extension("raw.db");
                        let run = tokio::task::spawn_blocking(move || {
                            raw::sqlite_insert_single(&path, &c, n)
                        })
                        .await
                        .unwrap();
                        (run, f)
                    }
                })
                .await;
            add("raw-insert-single", runs, Target::None);
            let n = sizes.raw_bulk;
            let c = config.clone();
            let runs = bench
                .measure(backend, "raw-insert-bulk", |f| {
                    let c = c.clone();
                    async move {
                        let path = f.path.clone().unwrap().with_extension("raw.db");
                        let run = tokio::task::spawn_blocking(move || {
                            raw::sqlite_insert_bulk(&path, &c, n)
                        })
                        .await
                        .unwrap();
                        (run, f)
                    }
                })
                .await;
            add("raw-insert-bulk", runs, Target::None);
            let n = sizes.drain;
            let c = config.clone();
            let runs = bench
                .measure(backend, "raw-claim-delete", |f| {
                    let c = c.clone();
                    async move {
                        let path = f.path.clone().unwrap().with_extension("raw.db");
                        let run = tokio::task::spawn_blocking(move || {
                            raw::sqlite_claim_delete(&path, &c, n)
                        })
                        .await
                        .unwrap();
                        (run, f)
                    }
                })
                .await;
            add("raw-claim-delete", runs, Target::None);
        }
        Backend::Postgres { url } => {
            for (label, clients) in [("raw-insert-single", 1), ("raw-insert-8-clients", 8)] {
                let n = sizes.single;
                let runs = bench
                    .measure(backend, label, |f| async move {
                        let run =
                            raw::pg_insert_single(url, f.schema.as_deref().unwrap(), n, clients)
                                .await;
                        (run, f)
                    })
                    .await;
                add(label, runs, Target::None);
            }
            let n = sizes.raw_bulk;
            let runs = bench
                .measure(backend, "raw-insert-bulk-1000", |f| async move {
                    let run = raw::pg_insert_bulk(url, f.schema.as_deref().unwrap(), n, 1000).await;
                    (run, f)
                })
                .await;
            add("raw-insert-bulk-1000", runs, Target::None);
            for (label, clients) in [("raw-claim-delete", 1), ("raw-claim-delete-8-clients", 8)] {
                let n = sizes.drain;
                let runs = bench
                    .measure(backend, label, |f| async move {
                        let run =
                            raw::pg_claim_delete(url, f.schema.as_deref().unwrap(), n, clients)
                                .await;
                        (run, f)
                    })
                    .await;
                add(label, runs, Target::None);
            }
        }
    }
    let sqlite = matches!(backend, Backend::Sqlite { .. });

    let n = sizes.single;
    let runs = bench
        .measure(backend, "enqueue-single", |f| async move {
            (workloads::enqueue_single(&f.queue, n).await, f)
        })
        .await;
    add("enqueue-single", runs, ratio("raw-insert-single", 0.9));
    let n = sizes.concurrent;
    let runs = bench
        .measure(backend, "enqueue-concurrent", |f| async move {
            (workloads::enqueue_concurrent(&f.queue, n, 8).await, f)
        })
        .await;
    let target = if sqlite {
        ratio("enqueue-single", 3.0)
    } else {
        ratio("raw-insert-8-clients", 0.9)
    };
    add("enqueue-concurrent", runs, target);
    let n = sizes.bulk;
    let runs = bench
        .measure(backend, "enqueue-bulk", |f| async move {
            (workloads::enqueue_bulk(&f.queue, n, 1000).await, f)
        })
        .await;
    add(
        "enqueue-bulk",
        runs,
        ratio(
            if sqlite {
                "raw-insert-bulk"
            } else {
                "raw-insert-bulk-1000"
            },
            0.5,
        ),
    );
    for (label, concurrency) in [("drain-1", 1), ("drain-8", 8)] {
        let n = sizes.drain;
        let runs = bench
            .measure(backend, label, |f| async move {
                workloads::preload(&f.queue, n).await;
                (workloads::drain(&f.queue, n, concurrency).await, f)
            })
            .await;
        let target = match (sqlite, concurrency) {
            (true, 1) => ratio("raw-claim-delete", 2.0),
            (true, _) => ratio("raw-claim-delete", 3.0),
            (false, 1) => ratio("raw-claim-delete", 3.0),
            (false, _) => ratio("raw-claim-delete-8-clients", 2.0),
        };
        add(label, runs, target);
    }
    let (n, per_second) = (sizes.latency, sizes.latency_rate);
    let runs = bench
        .measure(backend, "latency", |f| async move {
            (
                workloads::latency(&f.queue, &f.queue, n, per_second).await,
                f,
            )
        })
        .await;
    // Where the latency goes: the commit of the enqueue alone, at the same
    // pace (an idle database and machine between tasks).
    let acks: Vec<Run> = runs
        .iter()
        .filter_map(|run| run.enqueue_ack)
        .map(|(p50, p99)| Run {
            p50: Some(p50),
            p99: Some(p99),
            ..Run::default()
        })
        .collect();
    add(
        "latency",
        runs,
        Target::Latency {
            p50_ms: 1.0,
            p99_ms: 5.0,
        },
    );
    add("latency: enqueue acknowledged", acks, Target::None);
    // The same from a producer with a queue of its own, as another process
    // enqueues: the worker is woken (LISTEN/NOTIFY on PostgreSQL, the
    // file's data version on SQLite, looked at every 20 ms) and claims.
    let runs = bench
        .measure(backend, "latency: from another queue", |f| async move {
            let producer = backend.another_queue(&f).await;
            (
                workloads::latency(&f.queue, &producer, n, per_second).await,
                f,
            )
        })
        .await;
    let target = if sqlite {
        Target::None
    } else {
        Target::Latency {
            p50_ms: 1.0,
            p99_ms: 5.0,
        }
    };
    add("latency: from another queue", runs, target);
    measured
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // The raw limits run their loops in spawned tasks, on the runtime's
    // worker threads; the workloads run there too, so that both pay the
    // same wake-ups between a caller and its database connection.
    tokio::spawn(run(args)).await.expect("the benchmark ran");
}

async fn run(args: Args) {
    let sizes = if args.quick { &QUICK } else { &FULL };
    let durability = match args.durability.as_str() {
        "power-loss" => Durability::PowerLoss,
        "process-crash" => Durability::ProcessCrash,
        other => {
            eprintln!("taskq-bench: unknown durability {other:?}; use power-loss or process-crash");
            std::process::exit(2);
        }
    };
    let dir_holder = match &args.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().expect("a temporary directory")),
    };
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| dir_holder.as_ref().unwrap().path().to_path_buf());
    let mut backends = Vec::new();
    if matches!(args.backend.as_str(), "all" | "sqlite") {
        let config = SqliteConfig {
            durability,
            ..SqliteConfig::default()
        };
        backends.push(Backend::Sqlite {
            dir: dir.clone(),
            config,
        });
    }
    if matches!(args.backend.as_str(), "all" | "postgres") {
        match &args.postgres_url {
            Some(url) => backends.push(Backend::Postgres { url: url.clone() }),
            None => {
                eprintln!("taskq-bench: no --postgres-url (or TASKQ_BENCH_POSTGRES_URL); run ./scripts/bench to start a throwaway server");
                std::process::exit(2);
            }
        }
    }
    if backends.is_empty() {
        eprintln!(
            "taskq-bench: unknown backend {:?}; use sqlite, postgres or all",
            args.backend
        );
        std::process::exit(2);
    }

    let steps_per_backend = |b: &Backend| match b {
        Backend::Sqlite { .. } => 10,
        Backend::Postgres { .. } => 13,
    };
    let total: usize = backends.iter().map(steps_per_backend).sum::<usize>() * args.runs;
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let bench = Bench {
        runs: args.runs.max(1),
        progress,
        only: args.only.clone(),
    };
    let started = Instant::now();
    let mut figures = Vec::new();
    if !args.scale {
        for backend in &backends {
            figures.extend(bench.backend(backend, sizes).await);
        }
    }
    let mut scale_figures = Vec::new();
    if args.scale {
        for backend in &backends {
            scale_figures.extend(scale::check(backend, args.scale_rows, &bench.progress).await);
        }
    }
    bench.progress.finish_and_clear();
    report::judge(&mut figures);
    report::judge(&mut scale_figures);
    if args.json {
        let value = serde_json::json!({
            "runs": bench.runs,
            "sqlite_durability": args.durability,
            "seconds": started.elapsed().as_secs_f64(),
            "figures": figures,
            "scale": scale_figures,
        });
        println!("{value}");
    } else {
        if !figures.is_empty() {
            report::print_table(&figures);
        }
        if !scale_figures.is_empty() {
            report::print_table(&scale_figures);
        }
        println!();
        println!(
            "medians of {} runs; SQLite durability {}; {:.0} s",
            bench.runs,
            args.durability,
            started.elapsed().as_secs_f64()
        );
    }
}
