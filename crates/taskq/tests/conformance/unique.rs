//! Unique keys: one task per key among the counted states, duplicates
//! named, enforced by the database under concurrency.

use std::collections::HashSet;
use std::time::Duration;

use taskq::{Enqueued, Error, NewTask, RetryKey, State, Unique, MAX_UNIQUE_KEY_LEN};

use super::{claim_and_complete, TestDb};

fn keyed(action: &str, n: u32, key: &str) -> NewTask {
    NewTask::json(action, &n).unwrap().unique_key(key)
}

pub async fn a_duplicate_returns_the_task_holding_its_key(db: &dyn TestDb) {
    let queue = db.queue().await;
    let first = queue.enqueue_task(keyed("sync", 1, "c:1")).await.unwrap();
    assert!(!first.duplicate);
    let again = queue.enqueue_task(keyed("sync", 2, "c:1")).await.unwrap();
    assert_eq!(
        again,
        Enqueued {
            id: first.id,
            duplicate: true
        }
    );
    // Another action, or another key, is another task.
    assert!(
        !queue
            .enqueue_task(keyed("other", 1, "c:1"))
            .await
            .unwrap()
            .duplicate
    );
    assert!(
        !queue
            .enqueue_task(keyed("sync", 3, "c:2"))
            .await
            .unwrap()
            .duplicate
    );
    // A batch: a duplicate of a stored task and one of an earlier task of
    // the batch, beside new ones.
    let batch = queue
        .enqueue_many(vec![
            keyed("sync", 4, "c:1"),
            keyed("sync", 5, "c:3"),
            NewTask::json("sync", &6).unwrap(),
            keyed("sync", 7, "c:3"),
        ])
        .await
        .unwrap();
    assert_eq!(
        batch[0],
        Enqueued {
            id: first.id,
            duplicate: true
        }
    );
    assert!(!batch[1].duplicate && !batch[2].duplicate);
    assert_eq!(
        batch[3],
        Enqueued {
            id: batch[1].id,
            duplicate: true
        }
    );
    let payload: u32 = queue
        .get(first.id)
        .await
        .unwrap()
        .unwrap()
        .payload_json()
        .unwrap();
    assert_eq!(payload, 1, "the first one stays as it was");
    // Running still holds the key; once completed (and gone) it is free.
    let lease = queue.claim("sync").await.unwrap().unwrap();
    assert_eq!(lease.id(), first.id);
    assert!(
        queue
            .enqueue_task(keyed("sync", 8, "c:1"))
            .await
            .unwrap()
            .duplicate
    );
    lease.complete().await.unwrap();
    let fresh = queue.enqueue_task(keyed("sync", 9, "c:1")).await.unwrap();
    assert!(!fresh.duplicate && fresh.id != first.id);
}

pub async fn finished_tasks_count_when_the_key_says_so(db: &dyn TestDb) {
    let queue = db.queue().await;
    // Failed ones count when included; cancelled ones do not.
    let strict = |n| {
        NewTask::json("mail", &n)
            .unwrap()
            .unique(Unique::key("u:1").including(State::Failed))
    };
    let id = queue.enqueue_task(strict(1)).await.unwrap().id;
    queue
        .claim("mail")
        .await
        .unwrap()
        .unwrap()
        .fail_permanently("bounced")
        .await
        .unwrap();
    assert_eq!(queue.enqueue_task(strict(2)).await.unwrap().id, id);
    assert!(queue.enqueue_task(strict(2)).await.unwrap().duplicate);
    let plain = queue
        .enqueue_task(keyed("mail", 3, "u:2"))
        .await
        .unwrap()
        .id;
    queue.cancel(plain).await.unwrap();
    assert!(
        !queue
            .enqueue_task(keyed("mail", 4, "u:2"))
            .await
            .unwrap()
            .duplicate
    );
    // A period: the completed task is kept, and holds its window.
    let hourly = |n| {
        NewTask::json("digest", &n)
            .unwrap()
            .unique(Unique::key("u:1").per(Duration::from_secs(3600)))
    };
    let first = queue.enqueue_task(hourly(1)).await.unwrap();
    claim_and_complete(&queue, "digest").await;
    let kept = queue
        .get(first.id)
        .await
        .unwrap()
        .expect("kept for its window");
    assert_eq!(kept.state, State::Succeeded);
    assert!(kept.unique_window.is_some());
    let again = queue.enqueue_task(hourly(2)).await.unwrap();
    assert_eq!(
        again,
        Enqueued {
            id: first.id,
            duplicate: true
        }
    );
    // The same key without a period counts only queued and running tasks.
    assert!(
        !queue
            .enqueue_task(NewTask::json("digest", &3).unwrap().unique_key("u:1"))
            .await
            .unwrap()
            .duplicate
    );
}

pub async fn concurrent_enqueues_of_one_key_make_one_task(db: &dyn TestDb) {
    const PRODUCERS: usize = 8;
    const EACH: usize = 125;
    let mut producers = Vec::new();
    for _ in 0..PRODUCERS {
        let queue = db.queue().await;
        producers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..EACH {
                let task = keyed("race", n as u32, "the-key");
                ids.push(queue.enqueue_task(task).await.unwrap());
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for producer in producers {
        all.extend(producer.await.unwrap());
    }
    let ids: HashSet<_> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 1, "one task for every enqueue: {ids:?}");
    assert_eq!(
        all.iter().filter(|e| !e.duplicate).count(),
        1,
        "one was added"
    );
    let queue = db.queue().await;
    assert_eq!(queue.len("race").await.unwrap(), 1);
}

pub async fn retry_keeps_replaces_or_clears_the_key(db: &dyn TestDb) {
    let queue = db.queue().await;
    let old = queue.enqueue_task(keyed("job", 1, "k")).await.unwrap().id;
    queue.cancel(old).await.unwrap();
    let new = queue.enqueue_task(keyed("job", 2, "k")).await.unwrap().id;
    match queue.retry(old).await {
        Err(Error::Duplicate {
            id, key, existing, ..
        }) => {
            assert_eq!((id, key.as_str(), existing), (old, "k", new));
        }
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert_eq!(
        queue.get(old).await.unwrap().unwrap().state,
        State::Cancelled,
        "unchanged"
    );
    queue
        .retry_with(old, RetryKey::Replace("k2".into()))
        .await
        .unwrap();
    let task = queue.get(old).await.unwrap().unwrap();
    assert_eq!(
        (task.state, task.unique_key.as_deref()),
        (State::Queued, Some("k2"))
    );
    assert!(
        queue
            .enqueue_task(keyed("job", 3, "k2"))
            .await
            .unwrap()
            .duplicate
    );
    queue.cancel(old).await.unwrap();
    queue.retry_with(old, RetryKey::Clear).await.unwrap();
    let task = queue.get(old).await.unwrap().unwrap();
    assert_eq!((task.state, task.unique_key), (State::Queued, None));
    assert!(task.unique_states.is_empty());
    assert!(matches!(
        queue
            .retry_with(old, RetryKey::Replace(String::new()))
            .await,
        Err(Error::InvalidInput {
            field: "unique_key",
            ..
        })
    ));
}

pub async fn bad_unique_keys_are_refused(db: &dyn TestDb) {
    let queue = db.queue().await;
    for key in [
        String::new(),
        "k".repeat(MAX_UNIQUE_KEY_LEN + 1),
        "a\nb".to_string(),
    ] {
        let error = queue.enqueue_task(keyed("a", 1, &key)).await.unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidInput {
                    field: "unique_key",
                    ..
                }
            ),
            "{key:?}: {error}"
        );
    }
    let not_finished = NewTask::json("a", &1)
        .unwrap()
        .unique(Unique::key("k").including(State::Queued));
    assert!(matches!(
        queue.enqueue_task(not_finished).await,
        Err(Error::InvalidInput {
            field: "unique.finished",
            ..
        })
    ));
    let longest = "k".repeat(MAX_UNIQUE_KEY_LEN);
    assert!(
        !queue
            .enqueue_task(keyed("a", 1, &longest))
            .await
            .unwrap()
            .duplicate
    );
    assert!(queue
        .stats()
        .await
        .unwrap()
        .iter()
        .all(|row| row.total() == 1));
}
