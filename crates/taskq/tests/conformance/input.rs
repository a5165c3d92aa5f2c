//! Bad input: a clear typed error, nothing written, no panic.

use std::time::Duration;

use taskq::{EnqueueOptions, Error, ListOptions, NewTask, State, MAX_ACTION_LEN, MAX_PAYLOAD_LEN};

use super::{no_backoff, TestDb};

fn invalid<T: std::fmt::Debug>(result: Result<T, Error>, field: &str) {
    match result {
        Err(Error::InvalidInput { field: f, reason }) => {
            assert_eq!(f, field, "{reason}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected invalid {field}, got {other:?}"),
    }
}

pub async fn bad_action_names_are_refused(db: &dyn TestDb) {
    let queue = db.queue().await;
    let huge = "x".repeat(MAX_ACTION_LEN + 1);
    for action in ["", huge.as_str(), "new\nline"] {
        invalid(queue.enqueue(action, &1).await, "action");
        invalid(queue.claim(action).await, "action");
        invalid(queue.len(action).await, "action");
    }
    let longest = "x".repeat(MAX_ACTION_LEN);
    queue.enqueue(&longest, &1).await.unwrap();
    queue.enqueue("ünïcödé 🚀", &1).await.unwrap();
    assert_eq!(queue.len(&longest).await.unwrap(), 1);
    assert_eq!(
        queue.stats().await.unwrap().len(),
        2,
        "only the valid tasks exist"
    );
}

pub async fn bad_options_are_refused(db: &dyn TestDb) {
    let queue = db.queue().await;
    let cases = [
        (
            EnqueueOptions {
                max_tries: -2,
                ..Default::default()
            },
            "max_tries",
        ),
        (
            EnqueueOptions {
                max_tries: 0,
                ..Default::default()
            },
            "max_tries",
        ),
        (
            EnqueueOptions {
                timeout: Duration::ZERO,
                ..Default::default()
            },
            "timeout",
        ),
        (
            EnqueueOptions {
                timeout: Duration::from_secs(u64::MAX / 4),
                ..Default::default()
            },
            "timeout",
        ),
        (
            EnqueueOptions {
                not_before: Some(taskq::NotBefore::Delay(Duration::from_secs(u64::MAX / 4))),
                ..Default::default()
            },
            "delay",
        ),
        (
            EnqueueOptions {
                timeout: Duration::from_nanos(1),
                ..Default::default()
            },
            "timeout",
        ),
        (
            EnqueueOptions {
                timeout: Duration::from_nanos(999),
                ..Default::default()
            },
            "timeout",
        ),
    ];
    for (options, field) in cases {
        invalid(queue.enqueue_with("a", &1, options).await, field);
    }
    invalid(
        queue
            .enqueue_task(NewTask::raw("a", vec![0; MAX_PAYLOAD_LEN + 1]))
            .await,
        "payload",
    );
    let mut lease = {
        queue.enqueue("b", &1).await.unwrap();
        queue.claim("b").await.unwrap().unwrap()
    };
    invalid(lease.extend(Duration::ZERO).await, "extend");
    invalid(lease.extend(Duration::from_nanos(500)).await, "extend");
    assert_eq!(queue.len("a").await.unwrap(), 0, "nothing was enqueued");
    lease.complete().await.unwrap();
}

pub async fn bad_limits_and_states_are_refused(db: &dyn TestDb) {
    let queue = db.queue().await;
    invalid(queue.claim_many("a", 0).await, "limit");
    invalid(
        queue.claim_many("a", taskq::MAX_CLAIM_BATCH + 1).await,
        "limit",
    );
    invalid(
        queue
            .list(&ListOptions {
                limit: 0,
                ..Default::default()
            })
            .await,
        "limit",
    );
    invalid(
        queue
            .list(&ListOptions {
                action: Some(String::new()),
                ..Default::default()
            })
            .await,
        "action",
    );
    invalid(queue.purge(State::Running, Duration::ZERO).await, "state");
    assert!("finished".parse::<State>().is_err());
}

pub async fn undecodable_payload_is_a_typed_error(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue
        .enqueue_task(NewTask::raw("a", b"{not json".to_vec()))
        .await
        .unwrap()
        .id;
    let lease = queue.claim("a").await.unwrap().unwrap();
    match lease.payload_json::<serde_json::Value>() {
        Err(Error::PayloadDecode { id: got, .. }) => assert_eq!(got, id),
        other => panic!("expected a decode error, got {other:?}"),
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code, reason = "only decoded")]
    struct Email {
        to: String,
    }
    queue
        .enqueue("b", &serde_json::json!({"from": "x"}))
        .await
        .unwrap();
    let lease_b = queue.claim("b").await.unwrap().unwrap();
    assert!(matches!(
        lease_b.payload_json::<Email>(),
        Err(Error::PayloadDecode { .. })
    ));
    lease.fail_permanently("undecodable").await.unwrap();
    assert_eq!(
        queue.get(id).await.unwrap().unwrap().state,
        State::Failed,
        "kept, not lost"
    );
}

pub async fn text_with_nul_characters_is_stored_on_every_backend(db: &dyn TestDb) {
    let queue = db.queue().await;
    let id = queue.enqueue("nul", &1).await.unwrap();
    let lease = queue.claim("nul").await.unwrap().unwrap();
    lease.fail("stderr said: \0binary\0 junk").await.unwrap();
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(task.state, State::Queued, "the try was recorded");
    assert_eq!(task.tries, 1);
    assert_eq!(
        task.last_error.as_deref(),
        Some("stderr said: \u{FFFD}binary\u{FFFD} junk")
    );
    let id = queue.enqueue("nul-for-good", &1).await.unwrap();
    let lease = queue.claim("nul-for-good").await.unwrap().unwrap();
    lease.fail_permanently("\0").await.unwrap();
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(task.state, State::Failed);
    assert_eq!(task.last_error.as_deref(), Some("\u{FFFD}"));
}

pub async fn an_invalid_follow_up_fails_the_try_with_its_reason(db: &dyn TestDb) {
    let queue = db.queue_with(no_backoff()).await;
    let id = queue
        .enqueue_task(NewTask::json("parent", &1).unwrap().max_tries(2))
        .await
        .unwrap()
        .id;
    let lease = queue.claim("parent").await.unwrap().unwrap();
    let error = lease
        .complete_with(vec![NewTask::raw("", Vec::new())])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidInput {
                field: "action",
                ..
            }
        ),
        "{error}"
    );
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(
        task.state,
        State::Queued,
        "not left running until its lease ends"
    );
    assert!(
        task.last_error
            .as_deref()
            .unwrap()
            .contains("the action name is empty"),
        "{:?}",
        task.last_error
    );
    assert_eq!(
        queue.stats().await.unwrap().len(),
        1,
        "no follow-up was enqueued"
    );

    // On the last try, the task fails for good, with the reason.
    let lease = queue.claim("parent").await.unwrap().expect("ready again");
    assert_eq!(lease.task().tries, 2);
    lease
        .complete_with(vec![NewTask::raw("ok", Vec::new()).max_tries(-7)])
        .await
        .unwrap_err();
    let task = queue.get(id).await.unwrap().unwrap();
    assert_eq!(task.state, State::Failed);
    assert!(task.last_error.unwrap().contains("max_tries"));
}
