//! Many worker processes on one schema.

use super::*;

/// A child process's queue on the schema its parent test names.
async fn child_queue() -> Queue {
    child_queue_with(QueueConfig::default()).await
}

/// A child process's queue with `config`.
async fn child_queue_with(config: QueueConfig) -> Queue {
    let schema = std::env::var("TASKQ_TEST_CHILD_SCHEMA").expect("started by a parent test");
    let postgres = PostgresConfig {
        schema,
        pool_size: 2,
        ..PostgresConfig::default()
    };
    let backend = PostgresBackend::connect(&url(), postgres).await.unwrap();
    Queue::new(backend, config).unwrap()
}

/// Starts the test `child` of this binary as a process on `db`'s schema,
/// its standard output piped.
fn spawn_child(db: &PostgresDb, child: &str) -> Child {
    spawn_child_with(db, child, &[])
}

/// [`spawn_child`] with more environment variables.
pub(super) fn spawn_child_with(db: &PostgresDb, child: &str, env: &[(&str, &str)]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", child, "--nocapture"])
        .env("TASKQ_TEST_CHILD_SCHEMA", &db.schema)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The test binary re-run to cancel the task TASKQ_TEST_CHILD_ID, as
/// another process would, printing the outcome.
#[tokio::test]
#[ignore = "run by a_running_handler_in_another_process_hears_its_cancellation_at_once as a child process"]
async fn child_canceller() {
    let id: i64 = std::env::var("TASKQ_TEST_CHILD_ID")
        .unwrap()
        .parse()
        .unwrap();
    let outcome = child_queue().await.cancel(TaskId(id)).await.unwrap();
    println!("\nCANCELLED {outcome:?}");
}

/// The test binary re-run as a worker process: claims and completes
/// "work" tasks until none is left, printing each id.
#[tokio::test]
#[ignore = "run by processes_complete_each_task_exactly_once as a child process"]
async fn child_worker() {
    let queue = child_queue().await;
    let mut out = String::new();
    loop {
        let leases = queue.claim_many("work", 5).await.unwrap();
        if leases.is_empty() {
            break;
        }
        for lease in leases {
            out.push_str(&format!("DONE {}\n", lease.id()));
            lease.complete().await.unwrap();
        }
    }
    print!("\n{out}");
}

/// The test binary re-run as a producer: enqueues 125 tasks with one
/// unique key, printing each answer.
#[tokio::test]
#[ignore = "run by processes_enqueueing_one_unique_key_make_one_task as a child process"]
async fn child_unique_producer() {
    let queue = child_queue().await;
    let mut out = String::new();
    for n in 0..125 {
        let task = NewTask::json("keyed", &n).unwrap().unique_key("the-key");
        let enqueued = queue.enqueue_task(task).await.unwrap();
        out.push_str(&format!(
            "ENQUEUED {} {}\n",
            enqueued.id, enqueued.duplicate
        ));
    }
    print!("\n{out}");
}

/// The test binary re-run as a worker of four slots for "limited" tasks,
/// whose handler takes 20 ms, until the time TASKQ_TEST_CHILD_UNTIL,
/// printing when each ran.
#[tokio::test]
#[ignore = "run by a_concurrency_limit_of_three_holds_across_four_worker_processes as a child process"]
async fn child_limited_worker() {
    use crate::conformance::ledger::now_micros;
    use taskq::worker::{TaskContext, Worker, WorkerConfig};
    let until: u64 = std::env::var("TASKQ_TEST_CHILD_UNTIL")
        .unwrap()
        .parse()
        .unwrap();
    let config = WorkerConfig {
        concurrency: 4,
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(child_queue().await, config);
    worker
        .handle("limited", |_: i32, _ctx: TaskContext| async move {
            let start = now_micros();
            tokio::time::sleep(Duration::from_millis(20)).await;
            println!("RAN {start} {}", now_micros());
            Ok::<_, String>(())
        })
        .unwrap();
    let wait = Duration::from_micros(until.saturating_sub(now_micros()));
    worker.run_until(tokio::time::sleep(wait)).await.unwrap();
}

#[tokio::test]
async fn a_concurrency_limit_of_three_holds_across_four_worker_processes() {
    use crate::conformance::ledger::{max_overlap, now_micros, parse_run};
    let db = postgres_db().await;
    let queue = db.queue().await;
    queue
        .set_limits("limited", taskq::Limits::new().concurrency(3))
        .await
        .unwrap();
    let tasks = (0..120)
        .map(|i| NewTask::json("limited", &i).unwrap())
        .collect();
    queue.enqueue_many(tasks).await.unwrap();
    let until = (now_micros() + 6_000_000).to_string();
    let env = [("TASKQ_TEST_CHILD_UNTIL", until.as_str())];
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_child_with(&db, "processes::child_limited_worker", &env))
        .collect();
    let mut runs = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let stdout = String::from_utf8(output.stdout).unwrap();
        runs.extend(
            stdout
                .lines()
                .filter_map(|line| line.find("RAN ").map(|at| parse_run(&line[at + 4..]))),
        );
    }
    assert_eq!(runs.len(), 120, "every task ran once");
    assert_eq!(max_overlap(&runs), 3, "never more than three at once");
}

fn beat() -> taskq::Schedule {
    taskq::Schedule::every("beat", "beat", Duration::from_secs(1))
}

/// The test binary re-run as a worker that declares [`beat`] and runs its
/// tasks until the time TASKQ_TEST_CHILD_UNTIL (microseconds since the
/// Unix epoch), printing the tick of each task it ran.
#[tokio::test]
#[ignore = "run by four_worker_processes_run_each_tick_of_a_schedule_once as a child process"]
async fn child_schedule_worker() {
    use taskq::worker::{TaskContext, Worker, WorkerConfig};
    let until: u64 = std::env::var("TASKQ_TEST_CHILD_UNTIL")
        .unwrap()
        .parse()
        .unwrap();
    let until = std::time::UNIX_EPOCH + Duration::from_micros(until);
    let mut worker = Worker::new(child_queue().await, WorkerConfig::default());
    worker.schedule(beat()).unwrap();
    worker
        .handle("beat", |(): (), ctx: TaskContext| async move {
            let tick = ctx.task().not_before.duration_since(std::time::UNIX_EPOCH);
            println!("RAN {}", tick.unwrap().as_micros());
            Ok::<_, String>(())
        })
        .unwrap();
    let wait = until
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    worker.run_until(tokio::time::sleep(wait)).await.unwrap();
}

#[tokio::test]
async fn four_worker_processes_run_each_tick_of_a_schedule_once() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    queue.schedules().upsert(beat()).await.unwrap();
    let first = queue
        .schedules()
        .get("beat")
        .await
        .unwrap()
        .unwrap()
        .next_at;
    let first = u64::try_from(
        first
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap();
    // Ten ticks, the last half a second before the workers stop.
    let until = (first + 9_500_000).to_string();
    let env = [("TASKQ_TEST_CHILD_UNTIL", until.as_str())];
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_child_with(&db, "processes::child_schedule_worker", &env))
        .collect();
    let mut ran: Vec<u64> = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        ran.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("RAN "))
                .map(|t| t.parse::<u64>().unwrap()),
        );
    }
    ran.sort_unstable();
    let expected: Vec<u64> = (0..10).map(|n| first + n * 1_000_000).collect();
    assert_eq!(ran, expected, "each of ten ticks ran once");
    assert!(queue.stats().await.unwrap().is_empty(), "no task left over");
}

/// Runs `count` child processes of the test `child` on `db`'s schema and
/// returns the lines they printed after `prefix`.
fn children_say(db: &PostgresDb, child: &str, count: usize, prefix: &str) -> Vec<String> {
    let children: Vec<Child> = (0..count).map(|_| spawn_child(db, child)).collect();
    let mut said = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        said.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix(prefix))
                .map(str::to_owned),
        );
    }
    said
}

#[tokio::test]
async fn processes_enqueueing_one_unique_key_make_one_task() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let answers = children_say(&db, "processes::child_unique_producer", 8, "ENQUEUED ");
    assert_eq!(answers.len(), 1000);
    let ids: HashSet<&str> = answers
        .iter()
        .map(|a| a.split(' ').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "one task for all 1,000 enqueues: {ids:?}");
    assert_eq!(answers.iter().filter(|a| a.ends_with(" false")).count(), 1);
    assert_eq!(queue.stats().await.unwrap()[0].queued, 1);
}

#[tokio::test]
async fn a_pause_holds_workers_of_other_processes_until_resumed() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let tasks = (0..20)
        .map(|i| NewTask::json("work", &i).unwrap())
        .collect();
    queue.enqueue_many(tasks).await.unwrap();
    queue.pause("work").await.unwrap();
    let done = children_say(&db, "processes::child_worker", 1, "DONE ");
    assert!(done.is_empty(), "a paused action gave tasks: {done:?}");
    assert_eq!(queue.stats().await.unwrap()[0].queued, 20);
    queue.resume("work").await.unwrap();
    let done = children_say(&db, "processes::child_worker", 1, "DONE ");
    assert_eq!(done.len(), 20);
}

#[tokio::test]
async fn processes_complete_each_task_exactly_once() {
    const TASKS: usize = 10_000;
    const PROCESSES: usize = 4;
    let db = postgres_db().await;
    let queue = db.queue().await;
    let mut ids = HashSet::new();
    for chunk in (0..TASKS).collect::<Vec<_>>().chunks(1000) {
        let batch = chunk
            .iter()
            .map(|i| NewTask::json("work", i).unwrap())
            .collect();
        ids.extend(
            queue
                .enqueue_many(batch)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id),
        );
    }
    let children: Vec<Child> = (0..PROCESSES)
        .map(|_| spawn_child(&db, "processes::child_worker"))
        .collect();
    let mut runs: HashMap<TaskId, usize> = HashMap::new();
    let mut per_process = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        let mut mine = 0;
        for id in text.lines().filter_map(|l| l.strip_prefix("DONE ")) {
            *runs.entry(TaskId(id.parse().unwrap())).or_default() += 1;
            mine += 1;
        }
        per_process.push(mine);
    }
    assert_eq!(runs.len(), TASKS, "every task ran: {per_process:?}");
    assert_eq!(runs.keys().copied().collect::<HashSet<_>>(), ids);
    let twice: Vec<_> = runs.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        twice.is_empty(),
        "tasks completed more than once: {twice:?}"
    );
    assert!(
        per_process.iter().filter(|&&n| n > 0).count() >= 2,
        "work was shared: {per_process:?}"
    );
    assert!(queue.stats().await.unwrap().is_empty());
}

fn unix_micros() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_micros()).unwrap()
}

/// The test binary re-run as an idle waiter that polls once a minute:
/// waits up to 20 s for one "wake" task and prints when it claimed it.
#[tokio::test]
#[ignore = "run by a_worker_of_another_process_is_woken_by_a_notification as a child process"]
async fn child_waiter() {
    let queue = child_queue_with(QueueConfig {
        poll_interval: Duration::from_secs(60),
        ..QueueConfig::default()
    })
    .await;
    println!("\nWAITING");
    match queue
        .claim_wait("wake", Duration::from_secs(20))
        .await
        .unwrap()
    {
        Some(lease) => {
            println!("CLAIMED {}", unix_micros());
            lease.complete().await.unwrap();
        }
        None => println!("CLAIMED none"),
    }
}

#[tokio::test]
async fn a_worker_of_another_process_is_woken_by_a_notification() {
    use std::io::BufRead;
    let db = postgres_db().await;
    let queue = db.queue().await;
    let mut child = spawn_child(&db, "processes::child_waiter");
    // The child's lines, read on a thread of their own: this runtime
    // keeps running the queue's background work meanwhile.
    let (said, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = said.send(line.unwrap());
        }
    });
    let mut next_after = async |prefix: &str| loop {
        let line = lines.recv().await.expect("the child ended early");
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.to_owned();
        }
    };
    next_after("WAITING").await;
    // Long enough for the child to have looked, found nothing, gone idle
    // and started listening.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    queue.enqueue("wake", &1).await.unwrap();
    let committed = unix_micros();
    let claimed = next_after("CLAIMED ").await;
    assert!(child.wait().unwrap().success());
    let claimed: i64 = claimed
        .parse()
        .unwrap_or_else(|_| panic!("the child was never woken (its poll is a minute): {claimed}"));
    let after = Duration::from_micros(u64::try_from(claimed - committed).unwrap_or(0));
    assert!(
        after < Duration::from_millis(100),
        "woken {after:?} after the commit"
    );
}
