//! What the dashboard reads and does: `list` by error text and parent,
//! the age of the oldest ready task, the throughput history (recorded by
//! workers), and retry and delete of everything a filter matches.

use std::time::{Duration, SystemTime};

use taskq::worker::{Outcome, TaskContext, Worker};
use taskq::{ListOptions, NewTask, State, TaskId, Throughput, THROUGHPUT_KEPT};

use super::worker::{config, start, until};
use super::{no_backoff, TestDb};

/// Fails the oldest ready task of `action` for good with `error`.
async fn fail_with(queue: &taskq::Queue, action: &str, error: &str) -> TaskId {
    let lease = queue.claim(action).await.unwrap().expect("a ready task");
    let id = lease.id();
    lease.fail_permanently(error).await.unwrap();
    id
}

fn ids(tasks: &[taskq::Task]) -> Vec<TaskId> {
    tasks.iter().map(|t| t.id).collect()
}

pub async fn list_finds_tasks_by_the_text_of_their_last_error(db: &dyn TestDb) {
    let queue = db.queue().await;
    for i in 0..6 {
        queue.enqueue("mail", &i).await.unwrap();
    }
    let timeouts = [
        fail_with(&queue, "mail", "SMTP Timeout after 30s").await,
        fail_with(&queue, "mail", "bad address").await,
        fail_with(&queue, "mail", "connect: timeout").await,
        fail_with(&queue, "mail", "100% full").await,
    ];
    let matching = |text: &str, state, after| ListOptions {
        state,
        error_contains: Some(text.to_owned()),
        after,
        limit: 1,
        ..ListOptions::default()
    };
    // Case is ignored; pages go on after the last id shown.
    let first = queue
        .list(&matching("TIMEOUT", Some(State::Failed), None))
        .await
        .unwrap();
    assert_eq!(ids(&first), [timeouts[0]]);
    let second = queue
        .list(&matching("timeout", Some(State::Failed), Some(first[0].id)))
        .await
        .unwrap();
    assert_eq!(ids(&second), [timeouts[2]]);
    let without_state = ListOptions {
        limit: 10,
        ..matching("timeout", None, None)
    };
    assert_eq!(
        ids(&queue.list(&without_state).await.unwrap()),
        [timeouts[0], timeouts[2]]
    );
    // The text is matched as it is: `%` and `_` are no wildcards.
    let percent = ListOptions {
        limit: 10,
        ..matching("0%", Some(State::Failed), None)
    };
    assert_eq!(ids(&queue.list(&percent).await.unwrap()), [timeouts[3]]);
    let underscore = ListOptions {
        limit: 10,
        ..matching("_", None, None)
    };
    assert!(queue.list(&underscore).await.unwrap().is_empty());
    let empty = matching("", None, None);
    assert!(matches!(
        queue.list(&empty).await,
        Err(taskq::Error::InvalidInput { .. })
    ));
}

pub async fn list_finds_the_follow_ups_of_a_task(db: &dyn TestDb) {
    let queue = db.queue().await;
    let order = queue.enqueue("order", &1).await.unwrap();
    queue.enqueue("order", &2).await.unwrap();
    queue.enqueue("ship", &0).await.unwrap();
    let lease = queue.claim("order").await.unwrap().unwrap();
    let made = lease
        .complete_with(vec![
            NewTask::json("ship", &1).unwrap(),
            NewTask::json("invoice", &1).unwrap(),
        ])
        .await
        .unwrap();
    let of = |parent, action: Option<&str>| ListOptions {
        parent: Some(parent),
        action: action.map(str::to_owned),
        ..ListOptions::default()
    };
    let follow_ups = queue.list(&of(order, None)).await.unwrap();
    assert_eq!(ids(&follow_ups), [made[0].id, made[1].id]);
    let ships = queue.list(&of(order, Some("ship"))).await.unwrap();
    assert_eq!(ids(&ships), [made[0].id]);
    assert!(queue.list(&of(made[0].id, None)).await.unwrap().is_empty());
}

pub async fn stats_say_since_when_the_oldest_ready_task_waits(db: &dyn TestDb) {
    let queue = db.queue().await;
    let later = NewTask::json("a", &1)
        .unwrap()
        .delay(Duration::from_secs(3600));
    queue.enqueue_task(later).await.unwrap();
    let stats = queue.stats().await.unwrap();
    assert_eq!(stats[0].oldest_ready, None, "nothing is due yet");

    let before = SystemTime::now() - Duration::from_secs(1);
    let urgent = NewTask::json("a", &2).unwrap().priority(-5);
    let urgent = queue.enqueue_task(urgent).await.unwrap().id;
    let early = NewTask::json("a", &3)
        .unwrap()
        .priority(3)
        .run_at(SystemTime::now() - Duration::from_secs(600));
    let early = queue.enqueue_task(early).await.unwrap().id;
    let stats = queue.stats().await.unwrap();
    let early_at = queue.get(early).await.unwrap().unwrap().not_before;
    assert_eq!(stats[0].oldest_ready, Some(early_at));
    assert!(early_at < before);

    queue
        .claim("a")
        .await
        .unwrap()
        .unwrap()
        .complete()
        .await
        .unwrap();
    queue
        .claim("a")
        .await
        .unwrap()
        .unwrap()
        .complete()
        .await
        .unwrap();
    assert!(queue.get(urgent).await.unwrap().is_none());
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats[0].queued, stats[0].oldest_ready), (1, None));
}

pub async fn the_throughput_history_adds_up_per_minute_and_action(db: &dyn TestDb) {
    let queue = db.queue().await;
    let now = SystemTime::now();
    let row = |minute, action: &str, completed, failed| Throughput {
        minute,
        action: action.to_owned(),
        completed,
        retried: 1,
        failed,
    };
    let old = now - THROUGHPUT_KEPT - Duration::from_secs(120);
    queue
        .record_throughput(vec![row(old, "a", 9, 9)])
        .await
        .unwrap();
    queue
        .record_throughput(vec![
            row(now, "a", 2, 0),
            row(now, "a", 3, 1),
            row(now, "b", 0, 0),
        ])
        .await
        .unwrap();
    queue
        .record_throughput(vec![row(now, "a", 5, 0)])
        .await
        .unwrap();
    let history = queue.throughput(THROUGHPUT_KEPT * 2).await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(
        (history[0].action.as_str(), history[0].completed),
        ("a", 10)
    );
    assert_eq!((history[0].retried, history[0].failed), (3, 1));
    assert_eq!(history[1].action, "b", "a row of retries only is kept");
    let start = history[0].minute;
    assert!(start <= now && now.duration_since(start).unwrap() < Duration::from_secs(60));
    let bad = vec![row(now, "", 1, 0)];
    assert!(matches!(
        queue.record_throughput(bad).await,
        Err(taskq::Error::InvalidInput { .. })
    ));
}

pub async fn a_worker_records_what_it_ran_in_the_history(db: &dyn TestDb) {
    let queue = db.queue_with(no_backoff()).await;
    let mut worker = Worker::new(queue.clone(), config(2));
    worker
        .handle("job", |n: u32, _ctx: TaskContext| async move {
            match n {
                0 => Ok(Outcome::fail("no")),
                1 => Err(format!("retry {n}")),
                _ => Ok(Outcome::complete()),
            }
        })
        .unwrap();
    let running = start(worker);
    for n in [0, 2, 3, 4] {
        queue.enqueue("job", &n).await.unwrap();
    }
    let retried = NewTask::json("job", &1).unwrap().max_tries(2);
    queue.enqueue_task(retried).await.unwrap();
    until("every task to finish", async || {
        let stats = queue.stats().await.unwrap();
        stats.iter().all(|row| row.queued + row.running == 0)
    })
    .await;
    running.stop().await;
    let history = queue.throughput(Duration::from_secs(600)).await.unwrap();
    let sum = |get: fn(&Throughput) -> u64| history.iter().map(get).sum::<u64>();
    assert_eq!(
        (sum(|r| r.completed), sum(|r| r.retried), sum(|r| r.failed)),
        (3, 1, 2),
        "{history:?}"
    );
}

pub async fn retry_and_delete_matching_take_every_task_a_filter_matches(db: &dyn TestDb) {
    let queue = db.queue().await;
    for i in 0..5 {
        queue.enqueue("a", &i).await.unwrap();
    }
    let mut failed = Vec::new();
    for error in ["disk full", "timeout", "disk full", "disk full"] {
        failed.push(fail_with(&queue, "a", error).await);
    }
    let filter = ListOptions {
        state: Some(State::Failed),
        error_contains: Some("disk".into()),
        ..ListOptions::default()
    };
    let done = queue.retry_matching(&filter).await.unwrap();
    assert_eq!(done.retried, [failed[0], failed[2], failed[3]]);
    assert!(done.refused_for_their_key.is_empty());
    assert_eq!(
        queue.get(failed[1]).await.unwrap().unwrap().state,
        State::Failed
    );
    assert_eq!(queue.len("a").await.unwrap(), 4);
    let not_retryable = ListOptions {
        state: Some(State::Queued),
        ..ListOptions::default()
    };
    assert!(matches!(
        queue.retry_matching(&not_retryable).await,
        Err(taskq::Error::InvalidInput { .. })
    ));
    let deleted = queue.delete_matching(&not_retryable).await.unwrap();
    assert_eq!(deleted.len(), 4);
    assert_eq!(queue.len("a").await.unwrap(), 0);
    assert_eq!(queue.stats().await.unwrap()[0].failed, 1);
}
