//! Many worker processes on one schema.

use super::*;

/// The test binary re-run as a worker process: claims and completes
/// "work" tasks until none is left, printing each id.
#[tokio::test]
#[ignore = "run by processes_complete_each_task_exactly_once as a child process"]
async fn child_worker() {
    let schema = std::env::var("TASKQ_TEST_CHILD_SCHEMA").expect("started by a parent test");
    let config = PostgresConfig {
        schema,
        pool_size: 2,
        ..PostgresConfig::default()
    };
    let backend = PostgresBackend::connect(&url(), config).await.unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
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
        ids.extend(queue.enqueue_many(batch).await.unwrap());
    }
    let children: Vec<Child> = (0..PROCESSES)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "processes::child_worker",
                    "--nocapture",
                ])
                .env("TASKQ_TEST_CHILD_SCHEMA", &db.schema)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
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
