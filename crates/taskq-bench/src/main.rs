//! `taskq-bench`: the standard workloads of DESIGN.md section 4 on SQLite
//! and PostgreSQL, each figure also given as a ratio to the raw limit of
//! the database measured in the same run. `./scripts/bench` runs it.

mod churn;
mod churn_report;
mod passes;
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
    /// A pooler in transaction mode in front of that server (PgBouncer):
    /// the PostgreSQL workloads then run through it, with
    /// `prepared_statements` off and `LISTEN` on --postgres-url; the raw
    /// limits stay direct.
    #[arg(long, env = "TASKQ_BENCH_POOLER_URL", hide_env_values = true)]
    pooler_url: Option<String>,
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
    /// What the workloads' tasks carry: plain (the standard workloads),
    /// priorities (each task a priority of 0 to 3), or keys (each task a
    /// unique key of its own), to measure what those cost.
    #[arg(long, default_value = "plain", value_parser = ["plain", "priorities", "keys"])]
    tasks: String,
    /// Only enqueue this many tasks, as the producer process of the
    /// latency workload "from another process" (which starts it), into
    /// the database that `TASKQ_BENCH_PRODUCE_INTO` names.
    #[arg(long, hide = true)]
    produce: Option<usize>,
    /// The producer process's enqueues per second.
    #[arg(long, hide = true, default_value_t = 50)]
    produce_rate: u32,
    #[command(flatten)]
    churn: churn::ChurnArgs,
}

/// The database the producer process enqueues into: a SQLite file, or a
/// PostgreSQL URL (in the environment, so that no password shows in the
/// process list).
const PRODUCE_INTO: &str = "TASKQ_BENCH_PRODUCE_INTO";
/// The PostgreSQL schema the producer process enqueues into.
const PRODUCE_SCHEMA: &str = "TASKQ_BENCH_PRODUCE_SCHEMA";
/// Set for a producer process that goes through a pooler.
const PRODUCE_POOLED: &str = "TASKQ_BENCH_PRODUCE_POOLED";

/// How many tasks each workload uses.
pub(crate) struct Sizes {
    pub(crate) single: usize,
    pub(crate) concurrent: usize,
    pub(crate) bulk: usize,
    pub(crate) raw_bulk: usize,
    pub(crate) drain: usize,
    pub(crate) latency: usize,
    pub(crate) latency_rate: u32,
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

/// A database to measure: a fresh file or schema per run. (Not the
/// `taskq::backend::Backend` trait: the benchmark uses only the public API.)
pub(crate) enum Database {
    Sqlite {
        dir: PathBuf,
        config: SqliteConfig,
    },
    /// `pooler`: the queues go through this pooler in transaction mode.
    Postgres {
        url: String,
        pooler: Option<String>,
    },
}

/// One run's fresh database.
pub(crate) struct Fresh {
    pub(crate) queue: Queue,
    pub(crate) path: Option<PathBuf>,
    pub(crate) schema: Option<String>,
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
/// Through `pooler` (a pooler in transaction mode) when one is given,
/// with LISTEN on `url`.
async fn postgres_queue(url: &str, pooler: Option<&str>, schema: &str, pool_size: usize) -> Queue {
    let config = PostgresConfig {
        schema: schema.to_owned(),
        pool_size,
        prepared_statements: pooler.is_none(),
        listen_url: pooler.map(|_| url.to_owned()),
        ..PostgresConfig::default()
    };
    let backend = PostgresBackend::connect(pooler.unwrap_or(url), config)
        .await
        .expect("connect to PostgreSQL");
    Queue::new(backend, QueueConfig::default()).expect("a queue")
}

impl Database {
    fn name(&self) -> &'static str {
        match self {
            Database::Sqlite { .. } => "sqlite",
            Database::Postgres { pooler: None, .. } => "postgres",
            Database::Postgres {
                pooler: Some(_), ..
            } => "postgres+pgbouncer",
        }
    }

    async fn fresh(&self) -> Fresh {
        match self {
            Database::Sqlite { dir, config } => {
                let path = dir.join(format!("bench-{}.db", unique()));
                Fresh {
                    queue: sqlite_queue(&path, config).await,
                    path: Some(path),
                    schema: None,
                }
            }
            Database::Postgres { url, pooler } => {
                let schema = format!("bench_{}", unique());
                Fresh {
                    queue: postgres_queue(url, pooler.as_deref(), &schema, 16).await,
                    path: None,
                    schema: Some(schema),
                }
            }
        }
    }

    /// This benchmark started again as a process that enqueues `n` tasks
    /// at `per_second` into `fresh`'s database.
    pub(crate) fn producer_process(
        &self,
        fresh: &Fresh,
        n: usize,
        per_second: u32,
    ) -> std::process::Command {
        let exe = std::env::current_exe().expect("the benchmark's own path");
        let mut command = std::process::Command::new(exe);
        command
            .args([
                "--produce",
                &n.to_string(),
                "--produce-rate",
                &per_second.to_string(),
            ])
            .args(["--tasks", workloads::carried()]);
        match (self, &fresh.path, &fresh.schema) {
            (Database::Sqlite { config, .. }, Some(path), _) => {
                let durability = match config.durability {
                    Durability::PowerLoss => "power-loss",
                    Durability::ProcessCrash => "process-crash",
                };
                command
                    .env(PRODUCE_INTO, path)
                    .args(["--durability", durability]);
            }
            (Database::Postgres { url, pooler }, _, Some(schema)) => {
                command.env(PRODUCE_SCHEMA, schema);
                match pooler {
                    Some(pooler) => command.env(PRODUCE_INTO, pooler).env(PRODUCE_POOLED, url),
                    None => command.env(PRODUCE_INTO, url),
                };
            }
            _ => unreachable!("a fresh database has a path or a schema"),
        }
        command
    }

    /// Another queue, with its own connections, on `fresh`'s database.
    pub(crate) async fn another_queue(&self, fresh: &Fresh) -> Queue {
        match (self, &fresh.path, &fresh.schema) {
            (Database::Sqlite { config, .. }, Some(path), _) => sqlite_queue(path, config).await,
            (Database::Postgres { url, pooler }, _, Some(schema)) => {
                postgres_queue(url, pooler.as_deref(), schema, 4).await
            }
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
        if let (Database::Postgres { url, .. }, Some(schema)) = (self, fresh.schema) {
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

pub(crate) struct Bench {
    runs: usize,
    progress: ProgressBar,
    only: Option<String>,
}

/// One workload's runs so far, and what it is judged against.
pub(crate) struct Measured {
    pub(crate) workload: &'static str,
    pub(crate) runs: Vec<Run>,
    pub(crate) target: Target,
}

impl Bench {
    /// Runs `workload` once, on a fresh database.
    pub(crate) async fn measure<F, Fut>(
        &self,
        backend: &Database,
        label: &str,
        mut workload: F,
    ) -> Vec<Run>
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
    async fn backend(&self, backend: &Database, sizes: &Sizes) -> Vec<Figure> {
        let mut measured: Vec<Measured> = Vec::new();
        for _ in 0..self.runs {
            for pass in passes::one(self, backend, sizes).await {
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

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(n) = args.produce {
        return produce(&args, n).await;
    }
    // The raw limits run their loops in spawned tasks, on the runtime's
    // worker threads; the workloads run there too, so that both pay the
    // same wake-ups between a caller and its database connection.
    tokio::spawn(run(args)).await.expect("the benchmark ran");
}

/// The producer process of the latency workload "from another process".
async fn produce(args: &Args, n: usize) {
    workloads::carry(workloads::Carry::named(&args.tasks));
    let into = std::env::var(PRODUCE_INTO).expect("started by the benchmark");
    let queue = match std::env::var(PRODUCE_SCHEMA) {
        Ok(schema) => match std::env::var(PRODUCE_POOLED) {
            Ok(direct) => postgres_queue(&direct, Some(&into), &schema, 1).await,
            Err(_) => postgres_queue(&into, None, &schema, 1).await,
        },
        Err(_) => {
            let config = SqliteConfig {
                durability: durability(&args.durability),
                ..SqliteConfig::default()
            };
            sqlite_queue(std::path::Path::new(&into), &config).await
        }
    };
    workloads::produce(&queue, n, args.produce_rate).await;
    queue.flush().await.expect("the wake-ups are sent");
}

/// The durability `name` asks for; exits with a message on a bad one.
fn durability(name: &str) -> Durability {
    match name {
        "power-loss" => Durability::PowerLoss,
        "process-crash" => Durability::ProcessCrash,
        other => {
            eprintln!("taskq-bench: unknown durability {other:?}; use power-loss or process-crash");
            std::process::exit(2);
        }
    }
}

/// The databases `args` ask for; exits with a message on a bad choice.
fn databases(args: &Args, dir: &std::path::Path) -> Vec<Database> {
    let durability = durability(&args.durability);
    let mut databases = Vec::new();
    if matches!(args.backend.as_str(), "all" | "sqlite") {
        let config = SqliteConfig {
            durability,
            ..SqliteConfig::default()
        };
        databases.push(Database::Sqlite {
            dir: dir.to_path_buf(),
            config,
        });
    }
    if matches!(args.backend.as_str(), "all" | "postgres") {
        match &args.postgres_url {
            Some(url) => databases.push(Database::Postgres {
                url: url.clone(),
                pooler: args.pooler_url.clone(),
            }),
            None => {
                eprintln!("taskq-bench: no --postgres-url (or TASKQ_BENCH_POSTGRES_URL); run ./scripts/bench to start a throwaway server");
                std::process::exit(2);
            }
        }
    }
    if databases.is_empty() {
        eprintln!(
            "taskq-bench: unknown backend {:?}; use sqlite, postgres or all",
            args.backend
        );
        std::process::exit(2);
    }
    databases
}

/// A progress bar of `total` steps on a terminal, nothing elsewhere.
fn progress_bar(total: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar
}

/// Prints the judged figures as JSON or tables.
fn print(args: &Args, runs: usize, seconds: f64, figures: &[Figure], scale: &[Figure]) {
    if args.json {
        let value = serde_json::json!({
            "runs": runs,
            "sqlite_durability": args.durability,
            "seconds": seconds,
            "figures": figures,
            "scale": scale,
        });
        println!("{value}");
        return;
    }
    if !figures.is_empty() {
        report::print_table(figures);
    }
    if !scale.is_empty() {
        report::print_table(scale);
    }
    println!();
    println!(
        "medians of {runs} runs; SQLite durability {}; tasks {}; {seconds:.0} s",
        args.durability, args.tasks
    );
}

async fn run(args: Args) {
    let sizes = if args.quick { &QUICK } else { &FULL };
    workloads::carry(workloads::Carry::named(&args.tasks));
    let dir_holder = match &args.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().expect("a temporary directory")),
    };
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| dir_holder.as_ref().unwrap().path().to_path_buf());
    let databases = databases(&args, &dir);
    if args.churn.churn {
        return run_churn(&args, &databases).await;
    }
    let steps = |d: &Database| match d {
        Database::Sqlite { .. } => 14,
        Database::Postgres { .. } => 16,
    };
    let total: usize = databases.iter().map(steps).sum::<usize>() * args.runs;
    let bench = Bench {
        runs: args.runs.max(1),
        progress: progress_bar(total),
        only: args.only.clone(),
    };
    let started = Instant::now();
    let mut figures = Vec::new();
    let mut scale_figures = Vec::new();
    for database in &databases {
        if args.scale {
            scale_figures.extend(scale::check(database, args.scale_rows, &bench.progress).await);
        } else {
            figures.extend(bench.backend(database, sizes).await);
        }
    }
    bench.progress.finish_and_clear();
    report::judge(&mut figures);
    report::judge(&mut scale_figures);
    let seconds = started.elapsed().as_secs_f64();
    print(&args, bench.runs, seconds, &figures, &scale_figures);
}

/// The sustained-churn run on the PostgreSQL database of `databases`.
async fn run_churn(args: &Args, databases: &[Database]) {
    let Some(database) = databases
        .iter()
        .find(|d| matches!(d, Database::Postgres { .. }))
    else {
        eprintln!("taskq-bench: --churn runs on PostgreSQL only (--backend postgres)");
        std::process::exit(2);
    };
    let churn = churn::run(database, &args.churn).await;
    if args.json {
        println!("{}", serde_json::json!(churn));
    } else {
        churn_report::print(&churn);
    }
    if let Some(path) = &args.churn.churn_svg {
        if let Err(error) = churn_report::svg(&churn, path) {
            eprintln!("taskq-bench: could not draw {}: {error}", path.display());
            std::process::exit(1);
        }
    }
}
