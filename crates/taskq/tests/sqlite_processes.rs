//! Several OS processes on one SQLite file, and processes killed with
//! SIGKILL at awkward moments. The child processes are this test binary
//! itself, re-run with `--ignored --exact child_process` and told what to
//! do through environment variables.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use taskq::blocking::Worker;
use taskq::sqlite::{FileWatch, SqliteBackend, SqliteConfig};
use taskq::worker::{CancellationToken, TaskContext, WorkerConfig};
use taskq::{NewTask, QueueConfig, Schedule, State, TaskId};

#[path = "conformance/ledger.rs"]
mod ledger;

const MODE: &str = "TASKQ_TEST_CHILD_MODE";
const DB: &str = "TASKQ_TEST_CHILD_DB";

fn spawn_child(mode: &str, db: &Path) -> Child {
    spawn_child_with(mode, db, &[])
}

/// [`spawn_child`] with more environment variables.
fn spawn_child_with(mode: &str, db: &Path, env: &[(&str, &str)]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MODE, mode)
        .env(DB, db)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// What follows `marker` on a line. The test harness may print its own
/// text before a child's first line, so the marker is looked for anywhere.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker)
        .map(|at| line[at + marker.len()..].trim_end())
}

/// The lines a child printed with `prefix`, without it.
fn lines_with(child: Child, prefix: &str) -> Vec<String> {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the child failed: {:?}",
        output.status
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| after(line, prefix).map(str::to_owned))
        .collect()
}

/// Reads the child's output until a line starts with `prefix`.
fn wait_for_line(reader: &mut impl BufRead, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the child ended early"
        );
        if let Some(rest) = after(&line, prefix) {
            return rest.to_owned();
        }
    }
}

/// What a child process does, chosen by the parent test.
#[test]
#[ignore = "run by the other tests as a child process"]
fn child_process() {
    let mode = std::env::var(MODE).expect("started by a parent test");
    let db = std::env::var(DB).unwrap();
    let queue = taskq::blocking::Queue::open_sqlite(&db).unwrap();
    match mode.as_str() {
        // Work "work" tasks until none is left, printing each id.
        "drain" => {
            while let Some(lease) = queue.claim("work").unwrap() {
                println!("DONE {}", lease.id());
                lease.complete().unwrap();
            }
        }
        // Claim one task, say so, and hang until killed.
        "hold" => {
            let lease = queue.claim("held").unwrap().unwrap();
            println!("HELD {}", lease.id());
            std::thread::sleep(Duration::from_secs(120));
        }
        // Enqueue batches of 500 tasks forever, printing each acknowledged one.
        "produce" => {
            for batch in 0.. {
                let tasks = (0..500)
                    .map(|i| NewTask::json("batch", &(batch, i)).unwrap())
                    .collect();
                queue.enqueue_many(tasks).unwrap();
                println!("ACKED {batch}");
            }
        }
        // Enqueue 125 tasks with one unique key, printing each answer.
        "unique" => {
            for n in 0..125 {
                let task = NewTask::json("keyed", &n).unwrap().unique_key("the-key");
                let enqueued = queue.enqueue_task(task).unwrap();
                println!("ENQUEUED {} {}", enqueued.id, enqueued.duplicate);
            }
        }
        // Wait idle for one "wake" task with the watch of TASKQ_TEST_CHILD_WATCH
        // and a poll of a minute, then print when it was claimed.
        "wait" => {
            drop(queue);
            let watch = match std::env::var(WATCH).unwrap().as_str() {
                "notifications" => FileWatch::NotificationsOnly,
                "poll" => FileWatch::Poll,
                other => panic!("unknown watch {other}"),
            };
            let claimed = tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(wait_for_one(&db, watch));
            match claimed {
                Some(at) => println!("CLAIMED {at}"),
                None => println!("CLAIMED none"),
            }
        }
        // Cancel the task TASKQ_TEST_CHILD_ID, printing the outcome.
        "cancel" => {
            let id: i64 = std::env::var(ID).unwrap().parse().unwrap();
            println!("CANCELLED {:?}", queue.cancel(TaskId(id)).unwrap());
        }
        // Run a worker with the every-second schedule "beat" until the
        // time TASKQ_TEST_CHILD_UNTIL, printing the tick of each task run.
        "schedule" => {
            let until: u64 = std::env::var(UNTIL).unwrap().parse().unwrap();
            run_schedule_worker(&queue, UNIX_EPOCH + Duration::from_micros(until));
        }
        // Run a worker of four slots for "limited" tasks until the time
        // TASKQ_TEST_CHILD_UNTIL, printing when each ran.
        "limited" => {
            let until: u64 = std::env::var(UNTIL).unwrap().parse().unwrap();
            run_limited_worker(&queue, UNIX_EPOCH + Duration::from_micros(until));
        }
        other => panic!("unknown child mode {other}"),
    }
}

const ID: &str = "TASKQ_TEST_CHILD_ID";

const WATCH: &str = "TASKQ_TEST_CHILD_WATCH";

const UNTIL: &str = "TASKQ_TEST_CHILD_UNTIL";

fn beat() -> Schedule {
    Schedule::every("beat", "beat", Duration::from_secs(1))
}

/// A worker that declares [`beat`] and runs its tasks until `until`.
fn run_schedule_worker(queue: &taskq::blocking::Queue, until: SystemTime) {
    let mut worker = Worker::new(queue, WorkerConfig::default());
    worker.schedule(beat()).unwrap();
    worker
        .handle("beat", |(): (), ctx: TaskContext| {
            let tick = ctx.task().not_before.duration_since(UNIX_EPOCH).unwrap();
            println!("RAN {}", tick.as_micros());
            Ok::<_, String>(())
        })
        .unwrap();
    run_until(worker, until);
}

/// A worker of four slots whose handler takes 20 ms, printing its start
/// and end, until `until`.
fn run_limited_worker(queue: &taskq::blocking::Queue, until: SystemTime) {
    let config = WorkerConfig {
        concurrency: 4,
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(queue, config);
    worker
        .handle("limited", |_: i32, _ctx: TaskContext| {
            let start = ledger::now_micros();
            std::thread::sleep(Duration::from_millis(20));
            println!("RAN {start} {}", ledger::now_micros());
            Ok::<_, String>(())
        })
        .unwrap();
    run_until(worker, until);
}

/// Runs `worker` until the time `until`.
fn run_until(worker: Worker, until: SystemTime) {
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(until.duration_since(SystemTime::now()).unwrap_or_default());
        stopper.cancel();
    });
    worker.run_until(stop).unwrap();
}

fn unix_micros() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_micros()).unwrap()
}

/// Waits up to 20 s for a "wake" task on a queue that polls once a
/// minute; when it was claimed, in microseconds since the Unix epoch.
async fn wait_for_one(db: &str, watch: FileWatch) -> Option<i64> {
    let config = SqliteConfig {
        watch,
        ..SqliteConfig::default()
    };
    let backend = SqliteBackend::open(db, config).await.unwrap();
    let queue = taskq::Queue::new(
        backend,
        QueueConfig {
            poll_interval: Duration::from_secs(60),
            ..QueueConfig::default()
        },
    )
    .unwrap();
    println!("WAITING");
    let lease = queue
        .claim_wait("wake", Duration::from_secs(20))
        .await
        .unwrap()?;
    let at = unix_micros();
    lease.complete().await.unwrap();
    Some(at)
}

/// How long after the parent's commit an idle child, polling once a
/// minute and watching the file by `watch`, claimed the task.
fn child_woken_after(watch: &str) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wake.db");
    let queue = taskq::blocking::Queue::open_sqlite(&path).unwrap();
    let mut child = spawn_child_with("wait", &path, &[(WATCH, watch)]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "WAITING");
    // Long enough for the child to have looked, found nothing and gone idle.
    std::thread::sleep(Duration::from_millis(500));
    queue.enqueue("wake", &1).unwrap();
    let committed = unix_micros();
    let claimed = wait_for_line(&mut out, "CLAIMED ");
    assert!(child.wait().unwrap().success());
    let claimed: i64 = claimed
        .parse()
        .unwrap_or_else(|_| panic!("the child was never woken (its poll is a minute): {claimed}"));
    Duration::from_micros(u64::try_from(claimed - committed).unwrap_or(0))
}

#[test]
fn a_worker_of_another_process_hears_a_commit_through_file_notifications() {
    let after = child_woken_after("notifications");
    assert!(
        after < Duration::from_millis(100),
        "woken {after:?} after the commit, with its own polling off"
    );
}

#[test]
fn the_poll_of_the_file_delivers_when_notifications_are_off() {
    let after = child_woken_after("poll");
    assert!(
        after < Duration::from_millis(1000),
        "woken {after:?} after the commit by the 20 ms poll"
    );
}

#[test]
fn processes_and_threads_on_one_file_complete_each_task_once() {
    const TASKS: usize = 1500;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let queue = taskq::blocking::Queue::open_sqlite(&path).unwrap();
    let ids: HashSet<TaskId> = queue
        .enqueue_many(
            (0..TASKS)
                .map(|i| NewTask::json("work", &i).unwrap())
                .collect(),
        )
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();

    let children: Vec<Child> = (0..3).map(|_| spawn_child("drain", &path)).collect();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let queue = taskq::blocking::Queue::open_sqlite(&path).unwrap();
                let mut done = Vec::new();
                while let Some(lease) = queue.claim("work").unwrap() {
                    done.push(lease.id());
                    lease.complete().unwrap();
                }
                done
            })
        })
        .collect();

    let mut runs: HashMap<TaskId, usize> = HashMap::new();
    let mut by_children = 0;
    for child in children {
        for id in lines_with(child, "DONE ") {
            *runs.entry(TaskId(id.parse().unwrap())).or_default() += 1;
            by_children += 1;
        }
    }
    for thread in threads {
        for id in thread.join().unwrap() {
            *runs.entry(id).or_default() += 1;
        }
    }
    assert!(by_children > 0, "the other processes took part");
    assert_eq!(
        runs.keys().copied().collect::<HashSet<_>>(),
        ids,
        "every task ran"
    );
    assert!(runs.values().all(|&n| n == 1), "no task ran twice");
    assert!(queue.stats().unwrap().is_empty(), "nothing is left");
}

#[test]
fn a_worker_killed_while_holding_a_lease_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let queue = taskq::blocking::Queue::open_sqlite(&path).unwrap();
    let lease = Duration::from_millis(700);
    let id = queue
        .enqueue_task(NewTask::json("held", &"precious").unwrap().timeout(lease))
        .unwrap()
        .id;

    let mut child = spawn_child("hold", &path);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let held: i64 = wait_for_line(&mut stdout, "HELD ").parse().unwrap();
    assert_eq!(TaskId(held), id);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let task = queue.get(id).unwrap().unwrap();
    assert_eq!((task.state, task.tries), (State::Running, 1));
    assert!(
        queue.claim("held").unwrap().is_none(),
        "the lease outlives its worker"
    );
    std::thread::sleep(lease);
    let again = queue
        .claim("held")
        .unwrap()
        .expect("back after the lease expired");
    assert_eq!((again.id(), again.task().tries), (id, 2));
    assert_eq!(again.payload_json::<String>().unwrap(), "precious");
    again.complete().unwrap();
}

#[test]
fn a_producer_killed_mid_batch_leaves_whole_batches_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batches.db");
    taskq::blocking::Queue::open_sqlite(&path).unwrap();
    let mut child = spawn_child("produce", &path);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    for _ in 0..5 {
        acked.push(wait_for_line(&mut stdout, "ACKED ").parse::<i64>().unwrap());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let rest = stdout.lines().map_while(Result::ok);
    acked.extend(rest.filter_map(|l| after(&l, "ACKED ").and_then(|n| n.parse::<i64>().ok())));

    let conn = rusqlite::Connection::open(&path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let mut per_batch: HashMap<i64, i64> = HashMap::new();
    let mut statement = conn
        .prepare("SELECT json_extract(CAST(payload AS TEXT), '$[0]'), count(*) FROM taskq_tasks GROUP BY 1")
        .unwrap();
    for row in statement
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
    {
        let (batch, count) = row.unwrap();
        per_batch.insert(batch, count);
    }
    assert!(
        per_batch.values().all(|&n| n == 500),
        "no partial batch: {per_batch:?}"
    );
    for batch in acked {
        assert_eq!(
            per_batch.get(&batch),
            Some(&500),
            "acknowledged batch {batch} is there"
        );
    }
}

#[test]
fn processes_enqueueing_one_unique_key_make_one_task() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let queue = taskq::blocking::Queue::open_sqlite(&path).unwrap();
    let children: Vec<Child> = (0..8).map(|_| spawn_child("unique", &path)).collect();
    let answers: Vec<String> = children
        .into_iter()
        .flat_map(|child| lines_with(child, "ENQUEUED "))
        .collect();
    assert_eq!(answers.len(), 1000);
    let ids: HashSet<&str> = answers
        .iter()
        .map(|a| a.split(' ').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "one task for all 1,000 enqueues: {ids:?}");
    let added = answers.iter().filter(|a| a.ends_with(" false")).count();
    assert_eq!(added, 1);
    let stats = queue.stats().unwrap();
    assert_eq!((stats.len(), stats[0].queued), (1, 1));
}

#[test]
fn a_pause_holds_workers_of_other_processes_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let queue = taskq::blocking::Queue::open_sqlite(&path).unwrap();
    let tasks = (0..20)
        .map(|i| NewTask::json("work", &i).unwrap())
        .collect();
    queue.enqueue_many(tasks).unwrap();
    queue.pause("work").unwrap();
    let done = lines_with(spawn_child("drain", &path), "DONE ");
    assert!(done.is_empty(), "a paused action gave tasks: {done:?}");
    assert_eq!(queue.stats().unwrap()[0].queued, 20);
    queue.resume("work").unwrap();
    let done = lines_with(spawn_child("drain", &path), "DONE ");
    assert_eq!(done.len(), 20);
    assert!(queue.stats().unwrap().is_empty());
}

#[test]
fn a_handler_hears_a_cancel_from_another_process_within_the_watch() {
    use taskq::worker::{Outcome, StopReason, TaskContext, Worker, WorkerConfig};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _inside = runtime.enter();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watch.db");
    let workers = runtime.block_on(taskq::Queue::open_sqlite(&path)).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut worker = Worker::new(workers.clone(), WorkerConfig::default());
    worker
        .handle("far", move |_: u32, ctx: TaskContext| {
            let tx = tx.clone();
            async move {
                tx.send(None).unwrap();
                ctx.cancelled().await;
                tx.send(ctx.stop_reason()).unwrap();
                Ok::<_, String>(Outcome::cancel("stopped"))
            }
        })
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = runtime.spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    // A lease of a minute: a heartbeat every 20 s, so only the watch of
    // the file (every 20 ms while tasks run) is this quick. Asked by
    // another process: queues of this one share their wake-ups.
    let task = NewTask::json("far", &1)
        .unwrap()
        .timeout(Duration::from_secs(60));
    let id = runtime.block_on(workers.enqueue_task(task)).unwrap().id;
    let started = runtime.block_on(tokio::time::timeout(Duration::from_secs(30), rx.recv()));
    assert_eq!(started.unwrap(), Some(None));
    let asked = std::time::Instant::now();
    let child_id = id.0.to_string();
    let said = lines_with(
        spawn_child_with("cancel", &path, &[(ID, &child_id)]),
        "CANCELLED ",
    );
    assert_eq!(said, ["Requested"]);
    let heard = runtime.block_on(tokio::time::timeout(Duration::from_secs(10), rx.recv()));
    assert_eq!(heard.unwrap(), Some(Some(StopReason::Cancelled)));
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "heard through the watch, not a heartbeat: {:?}",
        asked.elapsed()
    );
    let _ = stop.send(());
    runtime.block_on(running).unwrap().unwrap();
    let task = runtime.block_on(workers.get(id)).unwrap().unwrap();
    assert_eq!(task.state, State::Cancelled);
}

#[test]
fn four_worker_processes_run_each_tick_of_a_schedule_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("taskq.db");
    let queue = taskq::blocking::Queue::open_sqlite(&db).unwrap();
    queue.schedules().upsert(beat()).unwrap();
    let first = queue.schedules().get("beat").unwrap().unwrap().next_at;
    // Ten ticks, the last half a second before the workers stop.
    let until = first + Duration::from_millis(9_500);
    let until = until
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
        .to_string();
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_child_with("schedule", &db, &[(UNTIL, &until)]))
        .collect();
    let mut ran: Vec<u64> = children
        .into_iter()
        .flat_map(|child| lines_with(child, "RAN "))
        .map(|tick| tick.parse().unwrap())
        .collect();
    ran.sort_unstable();
    let first = u64::try_from(first.duration_since(UNIX_EPOCH).unwrap().as_micros()).unwrap();
    let expected: Vec<u64> = (0..10).map(|n| first + n * 1_000_000).collect();
    assert_eq!(ran, expected, "each of ten ticks ran once");
    assert!(queue.stats().unwrap().is_empty(), "no task left over");
}

#[test]
fn a_concurrency_limit_of_three_holds_across_four_worker_processes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("taskq.db");
    let queue = taskq::blocking::Queue::open_sqlite(&db).unwrap();
    queue
        .set_limits("limited", taskq::Limits::new().concurrency(3))
        .unwrap();
    let tasks = (0..120)
        .map(|i| NewTask::json("limited", &i).unwrap())
        .collect();
    queue.enqueue_many(tasks).unwrap();
    let until = (ledger::now_micros() + 6_000_000).to_string();
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_child_with("limited", &db, &[(UNTIL, &until)]))
        .collect();
    let runs: Vec<(u64, u64)> = children
        .into_iter()
        .flat_map(|child| lines_with(child, "RAN "))
        .map(|line| ledger::parse_run(&line))
        .collect();
    assert_eq!(runs.len(), 120, "every task ran once");
    assert_eq!(
        ledger::max_overlap(&runs),
        3,
        "never more than three at once"
    );
}
