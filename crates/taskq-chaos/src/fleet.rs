//! The processes of a run: producers and workers started as child
//! processes of the harness, killed, paused and revived.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::plan::Plan;
use crate::roles::unix_micros;

/// The processes of a run, restarted when they die.
pub(crate) struct Fleet {
    pub(crate) url: String,
    pub(crate) dir: PathBuf,
    pub(crate) plan: Plan,
    pub(crate) workers: Vec<Child>,
    pub(crate) generation: usize,
    /// Each fault's start and end, in Unix microseconds.
    pub(crate) faults: Vec<(i64, i64)>,
    /// Whether workers started from now on let poison tasks complete.
    pub(crate) defused: bool,
    /// Whether workers started from now on enqueue tasks of their own.
    pub(crate) producing: bool,
}

fn me() -> Command {
    Command::new(std::env::current_exe().expect("the harness binary"))
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status();
}

impl Fleet {
    /// A fleet on `url` with nothing started yet.
    pub(crate) fn new(url: String, dir: PathBuf, plan: Plan) -> Self {
        Fleet {
            url,
            dir,
            plan,
            workers: Vec::new(),
            generation: 0,
            faults: Vec::new(),
            defused: false,
            producing: true,
        }
    }

    /// Starts the plan's workers.
    pub(crate) fn spawn_workers(&mut self) {
        for _ in 0..self.plan.workers {
            let worker = self.spawn_worker();
            self.workers.push(worker);
        }
    }

    pub(crate) fn spawn_worker(&mut self) -> Child {
        self.generation += 1;
        let mut command = me();
        command
            .args([
                "work",
                "--url",
                &self.url,
                "--concurrency",
                &self.plan.concurrency.to_string(),
                "--work-ms",
                &self.plan.work_ms.to_string(),
            ])
            .arg("--ledger")
            .arg(
                self.dir
                    .join(format!("ledger-{:04}.jsonl", self.generation)),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(points) = self.plan.failpoints {
            command.env("TASKQ_FAILPOINTS", points);
        }
        if self.defused {
            command.arg("--defused");
        }
        if self.producing && self.plan.produce_each > 0 {
            // Numbers of its own, clear of the producers' ranges.
            let start = (1_000 + self.generation as u64) * 1_000_000_000;
            command
                .args(["--produce", &self.plan.produce_each.to_string()])
                .args(["--start", &start.to_string()])
                .args(["--lease-ms", &self.plan.lease.as_millis().to_string()])
                .args(["--pause-ms", &self.plan.pause_ms.to_string()])
                .arg("--journal")
                .arg(
                    self.dir
                        .join(format!("producer-w{:04}.jsonl", self.generation)),
                );
        }
        command.spawn().expect("start a worker")
    }

    pub(crate) fn spawn_producer(&mut self, start: u64, count: u64) -> Child {
        self.generation += 1;
        me().args(["produce", "--url", &self.url])
            .arg("--journal")
            .arg(
                self.dir
                    .join(format!("producer-{:04}.jsonl", self.generation)),
            )
            .args(["--start", &start.to_string(), "--count", &count.to_string()])
            .args(["--batch", &self.plan.batch.to_string()])
            .args(["--lease-ms", &self.plan.lease.as_millis().to_string()])
            .args(["--poison-every", &self.plan.poison_every.to_string()])
            .args(["--pause-ms", &self.plan.pause_ms.to_string()])
            .args(self.plan.diamonds.then_some("--diamonds"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a producer")
    }

    /// Restarts workers that died by themselves (poison, kill points).
    pub(crate) fn revive(&mut self) {
        for index in 0..self.workers.len() {
            if matches!(self.workers[index].try_wait(), Ok(Some(_))) {
                let at = unix_micros();
                self.workers[index] = self.spawn_worker();
                self.faults.push((at, at));
            }
        }
    }

    pub(crate) fn kill_worker(&mut self) {
        let index = fastrand::usize(..self.workers.len());
        let at = unix_micros();
        let _ = self.workers[index].kill();
        let _ = self.workers[index].wait();
        self.workers[index] = self.spawn_worker();
        self.faults.push((at, at));
    }

    pub(crate) fn pause_worker(&mut self) {
        let index = fastrand::usize(..self.workers.len());
        let started = unix_micros();
        signal(&self.workers[index], "STOP");
        std::thread::sleep(self.plan.lease * 5 / 2);
        signal(&self.workers[index], "CONT");
        self.faults.push((started, unix_micros()));
    }

    /// Ends the faults that poison tasks cause: workers stop gracefully
    /// and their replacements let poison tasks complete. Tasks that retry
    /// forever wait out their backoff meanwhile.
    pub(crate) fn defuse(&mut self) {
        self.stop();
        self.defused = true;
        for index in 0..self.workers.len() {
            self.workers[index] = self.spawn_worker();
        }
    }

    pub(crate) fn stop(&mut self) {
        for worker in &self.workers {
            signal(worker, "TERM");
        }
        for worker in &mut self.workers {
            let _ = worker.wait();
        }
    }
}
