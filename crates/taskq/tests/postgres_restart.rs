//! PostgreSQL stopped hard (`pg_ctl -m immediate`) in the middle of a run:
//! producers and workers get errors while it is down, retry, and carry on
//! with the same queue once it is back; nothing acknowledged is lost. The
//! test owns a throwaway server of its own, so restarting it disturbs no
//! other test.

#![cfg(feature = "postgres")]

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taskq::postgres::{PostgresBackend, PostgresConfig};
use taskq::{NewTask, Queue, QueueConfig};

/// A PostgreSQL server on a temporary directory, stopped when dropped.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn run_as_owner(program: PathBuf, args: &[&str]) {
    let running_as_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut command = if running_as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(&program);
        command
    } else {
        Command::new(&program)
    };
    let output = command.args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program:?} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Cluster {
    fn start() -> Cluster {
        let bin = PathBuf::from(std::env::var("TASKQ_TEST_POSTGRES_BIN").expect(
            "run ./scripts/test, which finds the PostgreSQL binaries and sets TASKQ_TEST_POSTGRES_BIN",
        ));
        let dir = tempfile::tempdir().unwrap();
        let _ = Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .status();
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data_arg = data.to_str().unwrap().to_owned();
        run_as_owner(
            bin.join("initdb"),
            &["-D", &data_arg, "-U", "taskq", "-A", "trust", "--no-sync"],
        );
        let cluster = Cluster {
            bin,
            data,
            port,
            _dir: dir,
        };
        cluster.pg_ctl_start();
        cluster
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.data.parent().unwrap().display()
        );
        let log = self.data.parent().unwrap().join("server.log");
        run_as_owner(
            self.bin.join("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    fn stop_immediately(&self) {
        run_as_owner(
            self.bin.join("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    fn url(&self) -> String {
        format!("postgres://taskq@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.stop_immediately());
    }
}

const TASKS: usize = 300;

/// What the producer and workers of a run saw.
#[derive(Clone, Default)]
struct Seen {
    /// Numbers whose enqueue was acknowledged.
    acked: Arc<Mutex<HashSet<usize>>>,
    /// Numbers run, in order, repeats included.
    done: Arc<Mutex<Vec<usize>>>,
    /// Calls that failed (while the server was down).
    errors: Arc<Mutex<usize>>,
}

/// Enqueues TASKS numbered tasks one by one, retrying each until it is
/// acknowledged.
fn produce(queue: Queue, seen: Seen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0..TASKS {
            loop {
                // A short lease: a claim or completion in doubt when the
                // server died leaves the task leased until then.
                let task = NewTask::json("job", &i)
                    .unwrap()
                    .timeout(Duration::from_secs(2));
                match queue.enqueue_task(task).await {
                    Ok(_) => break,
                    Err(_) => {
                        *seen.errors.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            seen.acked.lock().unwrap().insert(i);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// Claims and completes tasks until every number ran (or 90 s passed),
/// carrying on through errors.
fn work(queue: Queue, seen: Seen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(90);
        let unfinished = || {
            seen.done
                .lock()
                .unwrap()
                .iter()
                .collect::<HashSet<_>>()
                .len()
                < TASKS
        };
        while Instant::now() < deadline && unfinished() {
            let result = async {
                if let Some(lease) = queue.claim_wait("job", Duration::from_millis(500)).await? {
                    let i: usize = lease.payload_json()?;
                    // Recorded before completing, like a ledger: a
                    // completion in doubt when the server died may have
                    // committed, and then the task is gone.
                    seen.done.lock().unwrap().push(i);
                    lease.complete().await?;
                }
                Ok::<_, taskq::Error>(())
            }
            .await;
            if result.is_err() {
                *seen.errors.lock().unwrap() += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
}

/// Works off whatever is left (tasks of enqueues or completions in doubt
/// come back within a lease) for up to 20 s; returns what still is.
async fn recover(queue: &Queue) -> u64 {
    let left = || async {
        let stats = queue.stats().await.unwrap();
        stats
            .iter()
            .map(|row| row.queued + row.running)
            .sum::<u64>()
    };
    let recovery = Instant::now() + Duration::from_secs(20);
    while left().await > 0 && Instant::now() < recovery {
        if let Some(lease) = queue
            .claim_wait("job", Duration::from_millis(500))
            .await
            .unwrap()
        {
            lease.complete().await.unwrap();
        }
    }
    left().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_producers_carry_on_after_a_server_restart() {
    let cluster = Cluster::start();
    let config = PostgresConfig {
        connect_timeout: Duration::from_secs(2),
        pool_size: 4,
        ..PostgresConfig::default()
    };
    let backend = PostgresBackend::connect(&cluster.url(), config)
        .await
        .unwrap();
    let queue_config = QueueConfig {
        poll_interval: Duration::from_millis(200),
        ..QueueConfig::default()
    };
    let queue = Queue::new(backend, queue_config).unwrap();
    let seen = Seen::default();
    let producer = produce(queue.clone(), seen.clone());
    let workers: Vec<_> = (0..2).map(|_| work(queue.clone(), seen.clone())).collect();

    // Let the run get going, then stop the server hard and bring it back.
    while seen.done.lock().unwrap().len() < 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.stop_immediately();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.pg_ctl_start();
    let restarted = Instant::now();
    let done_at_restart = seen.done.lock().unwrap().len();

    producer.await.unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    let done = seen.done.lock().unwrap().clone();
    let acked = seen.acked.lock().unwrap().clone();
    let completed: HashSet<usize> = done.iter().copied().collect();
    let lost: Vec<_> = acked.difference(&completed).collect();
    let stuck = recover(&queue).await;
    assert!(
        lost.is_empty(),
        "acknowledged but never completed: {lost:?}"
    );
    assert_eq!(acked.len(), TASKS);
    assert_eq!(
        stuck, 0,
        "tasks still queued or running after the recovery window"
    );
    assert!(
        done.len() > done_at_restart,
        "work went on after the restart"
    );
    let errors = *seen.errors.lock().unwrap();
    assert!(errors > 0, "the outage was noticed");
    eprintln!(
        "restart: down {:?}; {errors} errors; {} executions ({} repeated after in-doubt commits)",
        restarted - down,
        done.len(),
        done.len() - completed.len()
    );
}
