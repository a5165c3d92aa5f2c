//! One pass of the benchmark on one database: each raw limit and each
//! standard workload once, with the target each workload is judged by.

use crate::report::{Run, Target};
use crate::workloads::Producer;
use crate::{raw, workloads, Bench, Database, Measured, Sizes};

/// The workloads of one pass, as they are measured.
struct Pass<'a> {
    bench: &'a Bench,
    database: &'a Database,
    sizes: &'a Sizes,
    measured: Vec<Measured>,
}

fn ratio(baseline: &'static str, ratio: f64) -> Target {
    Target::RatioOf { baseline, ratio }
}

/// Each workload and raw limit of `database` once.
pub(crate) async fn one(bench: &Bench, database: &Database, sizes: &Sizes) -> Vec<Measured> {
    let mut pass = Pass {
        bench,
        database,
        sizes,
        measured: Vec::new(),
    };
    match database {
        Database::Sqlite { .. } => pass.sqlite_raw_limits().await,
        Database::Postgres { url, .. } => pass.postgres_raw_limits(url).await,
    }
    pass.enqueues().await;
    pass.drains().await;
    pass.latencies().await;
    pass.measured
}

impl Pass<'_> {
    fn sqlite(&self) -> bool {
        matches!(self.database, Database::Sqlite { .. })
    }

    fn add(&mut self, workload: &'static str, runs: Vec<Run>, target: Target) {
        if !runs.is_empty() {
            self.measured.push(Measured {
                workload,
                runs,
                target,
            });
        }
    }

    /// A raw SQLite loop of `n` rows on a file of its own, on a blocking
    /// thread.
    async fn sqlite_raw(
        &mut self,
        label: &'static str,
        n: usize,
        run: fn(&std::path::Path, &taskq::sqlite::SqliteConfig, usize) -> Run,
    ) {
        let Database::Sqlite { config, .. } = self.database else {
            return;
        };
        let runs = self
            .bench
            .measure(self.database, label, |f| {
                let config = config.clone();
                async move {
                    let path = f.path.clone().unwrap().with_extension("raw.db");
                    let run = tokio::task::spawn_blocking(move || run(&path, &config, n))
                        .await
                        .unwrap();
                    (run, f)
                }
            })
            .await;
        self.add(label, runs, Target::None);
    }

    async fn sqlite_raw_limits(&mut self) {
        let sizes = self.sizes;
        self.sqlite_raw("raw-insert-single", sizes.single, raw::sqlite_insert_single)
            .await;
        self.sqlite_raw("raw-insert-bulk", sizes.raw_bulk, raw::sqlite_insert_bulk)
            .await;
        self.sqlite_raw("raw-claim-delete", sizes.drain, raw::sqlite_claim_delete)
            .await;
    }

    async fn postgres_raw_limits(&mut self, url: &str) {
        let (bench, database, sizes) = (self.bench, self.database, self.sizes);
        for (label, clients) in [("raw-insert-single", 1), ("raw-insert-8-clients", 8)] {
            let n = sizes.single;
            let runs = bench
                .measure(database, label, |f| async move {
                    let schema = f.schema.as_deref().unwrap();
                    (raw::pg_insert_single(url, schema, n, clients).await, f)
                })
                .await;
            self.add(label, runs, Target::None);
        }
        let n = sizes.raw_bulk;
        let runs = bench
            .measure(database, "raw-insert-bulk-1000", |f| async move {
                let schema = f.schema.as_deref().unwrap();
                (raw::pg_insert_bulk(url, schema, n, 1000).await, f)
            })
            .await;
        self.add("raw-insert-bulk-1000", runs, Target::None);
        for (label, clients) in [("raw-claim-delete", 1), ("raw-claim-delete-8-clients", 8)] {
            let n = sizes.drain;
            let runs = bench
                .measure(database, label, |f| async move {
                    let schema = f.schema.as_deref().unwrap();
                    (raw::pg_claim_delete(url, schema, n, clients).await, f)
                })
                .await;
            self.add(label, runs, Target::None);
        }
    }

    async fn enqueues(&mut self) {
        let (bench, database, sizes) = (self.bench, self.database, self.sizes);
        let n = sizes.single;
        let runs = bench
            .measure(database, "enqueue-single", |f| async move {
                (workloads::enqueue_single(&f.queue, n).await, f)
            })
            .await;
        self.add("enqueue-single", runs, ratio("raw-insert-single", 0.9));
        if self.sqlite() {
            // A synchronous program's enqueues: each runs on the caller's
            // thread when no other write is in flight.
            let runs = bench
                .measure(database, "enqueue-single (blocking)", |f| async move {
                    (workloads::enqueue_single_blocking(&f.queue, n).await, f)
                })
                .await;
            self.add(
                "enqueue-single (blocking)",
                runs,
                ratio("raw-insert-single", 0.95),
            );
        }
        let n = sizes.concurrent;
        let runs = bench
            .measure(database, "enqueue-concurrent", |f| async move {
                (workloads::enqueue_concurrent(&f.queue, n, 8).await, f)
            })
            .await;
        let target = if self.sqlite() {
            ratio("enqueue-single", 3.0)
        } else {
            ratio("raw-insert-8-clients", 0.9)
        };
        self.add("enqueue-concurrent", runs, target);
        let n = sizes.bulk;
        let runs = bench
            .measure(database, "enqueue-bulk", |f| async move {
                (workloads::enqueue_bulk(&f.queue, n, 1000).await, f)
            })
            .await;
        let raw_bulk = if self.sqlite() {
            "raw-insert-bulk"
        } else {
            "raw-insert-bulk-1000"
        };
        self.add("enqueue-bulk", runs, ratio(raw_bulk, 0.5));
    }

    async fn drains(&mut self) {
        let (bench, database, sizes) = (self.bench, self.database, self.sizes);
        for (label, concurrency) in [("drain-1", 1), ("drain-8", 8)] {
            let n = sizes.drain;
            let runs = bench
                .measure(database, label, |f| async move {
                    workloads::preload(&f.queue, n).await;
                    (workloads::drain(&f.queue, n, concurrency).await, f)
                })
                .await;
            let target = match (self.sqlite(), concurrency) {
                (true, 1) => ratio("raw-claim-delete", 2.0),
                (true, _) => ratio("raw-claim-delete", 3.0),
                (false, 1) => ratio("raw-claim-delete", 3.0),
                (false, _) => ratio("raw-claim-delete-8-clients", 2.0),
            };
            self.add(label, runs, target);
        }
        self.limited_drains().await;
        self.workflow_drains().await;
    }

    /// drain-8 of workflows, against the plain drain-8 of the same pass:
    /// diamonds (a, then b and c, then d: three of each four tasks wait
    /// for others, and each completion of a dependency releases or counts
    /// down a dependent), and one fan-in (every task but the sink counts
    /// the same sink down, under its row lock).
    async fn workflow_drains(&mut self) {
        let (bench, database, sizes) = (self.bench, self.database, self.sizes);
        let diamonds = (sizes.drain / 4).clamp(1, 1000);
        let label = "drain-8 of diamonds (4 tasks each)";
        let runs = bench
            .measure(database, label, |f| async move {
                workloads::preload_diamonds(&f.queue, diamonds).await;
                (workloads::drain(&f.queue, 4 * diamonds, 8).await, f)
            })
            .await;
        self.add(label, runs, ratio("drain-8", 0.5));
        let sources = sizes.drain.clamp(1, 10_000);
        let label = "drain-8 of a fan-in (one sink)";
        let runs = bench
            .measure(database, label, |f| async move {
                workloads::preload_fan_in(&f.queue, sources).await;
                (workloads::drain(&f.queue, sources + 1, 8).await, f)
            })
            .await;
        self.add(label, runs, ratio("drain-8", 0.5));
    }

    /// drain-8 under limits, against the unlimited drain-8 of the same
    /// pass: a concurrency limit of 8 (the worker's own size, so that
    /// only the limit's cost shows), and a per-key limit of 1 over 1,000
    /// keys.
    async fn limited_drains(&mut self) {
        let (bench, database, sizes) = (self.bench, self.database, self.sizes);
        let n = sizes.drain;
        let runs = bench
            .measure(database, "drain-8 limited to 8", |f| async move {
                let limits = taskq::Limits::new().concurrency(8);
                f.queue.set_limits("bench", limits).await.expect("limit");
                workloads::preload(&f.queue, n).await;
                (workloads::drain(&f.queue, n, 8).await, f)
            })
            .await;
        self.add("drain-8 limited to 8", runs, ratio("drain-8", 0.7));
        let runs = bench
            .measure(database, "drain-8 one per key of 1,000", |f| async move {
                let limits = taskq::Limits::new().per_key(1);
                f.queue.set_limits("bench", limits).await.expect("limit");
                workloads::preload_keyed(&f.queue, n, 1000).await;
                (workloads::drain(&f.queue, n, 8).await, f)
            })
            .await;
        self.add("drain-8 one per key of 1,000", runs, ratio("drain-8", 0.7));
    }

    async fn latencies(&mut self) {
        let (bench, database, sizes) = (self.bench, self.database, self.sizes);
        let (n, per_second) = (sizes.latency, sizes.latency_rate);
        let runs = bench
            .measure(database, "latency", |f| async move {
                let run =
                    workloads::latency(&f.queue, Producer::Queue(&f.queue), n, per_second).await;
                (run, f)
            })
            .await;
        // Where the latency goes: the commit of the enqueue alone, at the
        // same pace (an idle database and machine between tasks).
        let acks: Vec<Run> = runs
            .iter()
            .filter_map(|run| run.enqueue_ack)
            .map(|(p50, p99)| Run {
                p50: Some(p50),
                p99: Some(p99),
                ..Run::default()
            })
            .collect();
        let fast = Target::Latency {
            p50_ms: 1.0,
            p99_ms: 5.0,
        };
        self.add("latency", runs, fast);
        self.add("latency: enqueue acknowledged", acks, Target::None);
        // The same from a producer with a queue of its own, as another
        // process enqueues: the worker is woken (LISTEN/NOTIFY on
        // PostgreSQL, the file's data version on SQLite) and claims.
        let runs = bench
            .measure(database, "latency: from another queue", |f| async move {
                let producer = database.another_queue(&f).await;
                let run =
                    workloads::latency(&f.queue, Producer::Queue(&producer), n, per_second).await;
                (run, f)
            })
            .await;
        self.add("latency: from another queue", runs, fast);
        // From a real second process (this benchmark, started again to
        // only enqueue): what a web process and a worker process see.
        let runs = bench
            .measure(database, "latency: from another process", |f| async move {
                let producer = Producer::Process(database.producer_process(&f, n, per_second));
                let run = workloads::latency(&f.queue, producer, n, per_second).await;
                (run, f)
            })
            .await;
        self.add("latency: from another process", runs, fast);
    }
}
