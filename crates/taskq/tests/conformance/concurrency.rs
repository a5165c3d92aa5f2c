//! Many workers and producers at once on one database.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use taskq::NewTask;

use super::TestDb;

pub async fn concurrent_workers_complete_each_task_once(db: &dyn TestDb) {
    const TASKS: usize = 600;
    const WORKERS: usize = 8;
    let producer = db.queue().await;
    let batch = (0..TASKS)
        .map(|i| NewTask::json("work", &i).unwrap())
        .collect();
    let ids: HashSet<_> = producer
        .enqueue_many(batch)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        // Half the workers share a queue, half have their own connections.
        let queue = if w % 2 == 0 {
            producer.clone()
        } else {
            db.queue().await
        };
        let seen = Arc::clone(&seen);
        workers.push(tokio::spawn(async move {
            let mut mine = 0;
            while let Some(lease) = queue.claim("work").await.unwrap() {
                seen.lock().unwrap().push(lease.id());
                lease.complete().await.unwrap();
                mine += 1;
            }
            mine
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let unique: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(total, TASKS);
    assert_eq!(seen.len(), TASKS, "no task ran twice");
    assert_eq!(unique, ids, "every task ran");
    assert!(producer.stats().await.unwrap().is_empty());
}

pub async fn concurrent_producers_get_distinct_ids(db: &dyn TestDb) {
    const PRODUCERS: usize = 8;
    const EACH: usize = 50;
    let shared = db.queue().await;
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let queue = if p % 2 == 0 {
            shared.clone()
        } else {
            db.queue().await
        };
        producers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..EACH {
                ids.push(queue.enqueue("p", &(p, i)).await.unwrap());
            }
            ids
        }));
    }
    let mut all = HashSet::new();
    for producer in producers {
        for id in producer.await.unwrap() {
            assert!(all.insert(id), "ids are unique");
        }
    }
    let queue = db.queue().await;
    assert_eq!(queue.len("p").await.unwrap(), (PRODUCERS * EACH) as u64);
}
