//! Priorities and paused actions.

use std::time::{Duration, SystemTime};

use taskq::{NewTask, QueueConfig, State};

use super::TestDb;

pub async fn priorities_order_claims_before_not_before_and_id(db: &dyn TestDb) {
    let queue = db.queue().await;
    let past = SystemTime::now() - Duration::from_secs(60);
    let task = |n: u32, priority: i16| NewTask::json("p", &n).unwrap().priority(priority);
    // Given in an order that none of the rules alone explains.
    let ids = queue
        .enqueue_many(vec![
            task(1, 5),
            task(2, -3),
            task(3, 0).run_at(past),
            task(4, 0),
            task(5, -3).run_at(past),
            task(6, 5).run_at(past),
            task(7, 0).delay(Duration::from_secs(3600)),
        ])
        .await
        .unwrap();
    let mut order = Vec::new();
    while let Some(lease) = queue.claim("p").await.unwrap() {
        assert_eq!(
            lease.task().priority,
            [5, -3, 0, 0, -3, 5][lease.payload_json::<usize>().unwrap() - 1]
        );
        order.push(lease.payload_json::<u32>().unwrap());
        lease.complete().await.unwrap();
    }
    // Priority first; then the earlier not-before; then the smaller id.
    assert_eq!(order, [5, 2, 3, 4, 6, 1]);
    assert_eq!(
        queue.get(ids[6].id).await.unwrap().unwrap().state,
        State::Queued,
        "not due"
    );
    assert_eq!(queue.len("p").await.unwrap(), 0);
    // A batch claim takes the same order.
    queue
        .enqueue_many((0..6).map(|n| task(n, (n % 3) as i16)).collect())
        .await
        .unwrap();
    let batch = queue.claim_many("p", 4).await.unwrap();
    let got: Vec<u32> = batch.iter().map(|l| l.payload_json().unwrap()).collect();
    assert_eq!(got, [0, 3, 1, 4]);
}

pub async fn many_waiting_tasks_do_not_hide_ready_ones_of_other_priorities(db: &dyn TestDb) {
    let queue = db.queue().await;
    let later = (0..500)
        .map(|n| {
            NewTask::json("w", &n)
                .unwrap()
                .delay(Duration::from_secs(3600))
        })
        .collect();
    queue.enqueue_many(later).await.unwrap();
    queue
        .enqueue_task(NewTask::json("w", &1000).unwrap().priority(7))
        .await
        .unwrap();
    queue
        .enqueue_task(
            NewTask::json("w", &1001)
                .unwrap()
                .priority(-7)
                .delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert_eq!(queue.len("w").await.unwrap(), 1);
    let lease = queue.claim("w").await.unwrap().expect("the ready one");
    assert_eq!(lease.payload_json::<u32>().unwrap(), 1000);
    assert!(queue.claim("w").await.unwrap().is_none());
}

pub async fn a_paused_action_is_not_claimed_until_resumed(db: &dyn TestDb) {
    let queue = db.queue().await;
    // It polls every 30 s: only a wake-up brings it back within the test.
    let other = db
        .queue_with(QueueConfig {
            poll_interval: Duration::from_secs(30),
            ..QueueConfig::default()
        })
        .await;
    let id = queue.enqueue("email", &1).await.unwrap();
    assert!(queue.pause("email").await.unwrap());
    assert!(!other.pause("email").await.unwrap(), "already paused");
    // Everywhere: another queue, on connections of its own, claims none.
    assert!(other.claim("email").await.unwrap().is_none());
    assert!(queue.claim_many("email", 10).await.unwrap().is_empty());
    assert_eq!(
        queue.len("email").await.unwrap(),
        0,
        "nothing a claim could take"
    );
    // Enqueues still work, and other actions still run.
    queue.enqueue("email", &2).await.unwrap();
    queue.enqueue("sms", &1).await.unwrap();
    assert!(queue.claim("sms").await.unwrap().is_some());
    assert_eq!(other.paused().await.unwrap(), ["email"]);
    let stats = other.stats().await.unwrap();
    let email = stats.iter().find(|row| row.action == "email").unwrap();
    assert!(email.paused && email.queued == 2);
    assert!(!stats.iter().find(|row| row.action == "sms").unwrap().paused);
    // Pausing an action without tasks shows it too.
    queue.pause("idle").await.unwrap();
    assert!(queue
        .stats()
        .await
        .unwrap()
        .iter()
        .any(|row| row.action == "idle" && row.paused && row.total() == 0));
    // A worker waiting for it is woken by the resume.
    let waiter = {
        let other = other.clone();
        tokio::spawn(async move { other.claim_wait("email", Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "nothing claimed while paused");
    let resumed = std::time::Instant::now();
    assert!(queue.resume("email").await.unwrap());
    assert!(!queue.resume("email").await.unwrap(), "not paused any more");
    let lease = waiter
        .await
        .unwrap()
        .unwrap()
        .expect("claimed once resumed");
    assert_eq!(lease.id(), id);
    assert!(
        resumed.elapsed() < Duration::from_secs(5),
        "{:?}",
        resumed.elapsed()
    );
    assert_eq!(queue.paused().await.unwrap(), ["idle"]);
    assert!(matches!(
        queue.pause("").await,
        Err(taskq::Error::InvalidInput { .. })
    ));
}

pub async fn stats_name_the_priorities_of_queued_tasks(db: &dyn TestDb) {
    let queue = db.queue().await;
    for priority in [5, -2, 5, 0] {
        queue
            .enqueue_task(NewTask::json("p", &priority).unwrap().priority(priority))
            .await
            .unwrap();
    }
    // The first to run (-2) runs now: it is no longer queued.
    let running = queue.claim("p").await.unwrap().unwrap();
    assert_eq!(running.task().priority, -2);
    queue.enqueue("none-queued", &1).await.unwrap();
    let _held = queue.claim("none-queued").await.unwrap().unwrap();
    let stats = queue.stats().await.unwrap();
    let of = |action: &str| stats.iter().find(|row| row.action == action).unwrap();
    assert_eq!(of("p").priorities, [0, 5], "lowest first, each once");
    assert_eq!(of("p").queued, 3);
    assert!(of("none-queued").priorities.is_empty());
}
