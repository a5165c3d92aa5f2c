//! The conformance suite again, through PgBouncer in transaction pooling
//! mode (`scripts/with-postgres` starts one in front of the server and
//! sets `TASKQ_TEST_PGBOUNCER_URL`), with `prepared_statements: false`
//! and `LISTEN` on the direct URL; and what changes behind a pooler.

use super::*;

fn bouncer_url() -> String {
    std::env::var("TASKQ_TEST_PGBOUNCER_URL").unwrap_or_else(|_| {
        panic!(
            "the PgBouncer tests need PgBouncer: run ./scripts/test, which starts one in \
             transaction pooling mode when it is installed (sudo apt-get install pgbouncer), \
             or set TASKQ_TEST_PGBOUNCER_URL=postgres://user@host:port/db"
        )
    })
}

fn behind_bouncer() -> PostgresConfig {
    PostgresConfig {
        prepared_statements: false,
        listen_url: Some(url()),
        ..small_pool()
    }
}

async fn bouncer_db() -> PostgresDb {
    PostgresDb::from_db(TestDatabase::postgres_with(
        &bouncer_url(),
        behind_bouncer(),
    ))
}

mod conformance_through_pgbouncer {
    use super::{bouncer_db, conformance};

    crate::conformance_tests!(bouncer_db);
}

#[tokio::test]
async fn without_a_direct_url_workers_poll_and_still_run_everything() {
    let config = PostgresConfig {
        listen_url: None,
        ..behind_bouncer()
    };
    let db = TestDatabase::postgres_with(&bouncer_url(), config);
    let fast_poll = QueueConfig {
        poll_interval: Duration::from_millis(50),
        ..QueueConfig::default()
    };
    let queue = db.queue_with(fast_poll).await.unwrap();
    assert!(!queue.supports_notify(), "no LISTEN through the pooler");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut worker =
        taskq::worker::Worker::new(queue.clone(), taskq::worker::WorkerConfig::default());
    worker
        .handle("email", move |n: u32, _ctx: taskq::worker::TaskContext| {
            let tx = tx.clone();
            async move { tx.send(n).map_err(|e| e.to_string()) }
        })
        .unwrap();
    let stop = taskq::worker::CancellationToken::new();
    let running = tokio::spawn(worker.run_until(stop.clone().cancelled_owned()));
    // Enqueued on the direct URL: another place as far as this process's
    // shared wake-ups go, and no LISTEN session, so only a poll finds it.
    let direct = PostgresConfig {
        schema: db.schema().unwrap().to_owned(),
        ..small_pool()
    };
    let producer = Queue::new(
        PostgresBackend::connect(&url(), direct).await.unwrap(),
        QueueConfig::default(),
    )
    .unwrap();
    for n in 0..20u32 {
        producer.enqueue("email", &n).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 20 {
        let n = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
        got.push(n.expect("the worker polls").unwrap());
    }
    got.sort();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    stop.cancel();
    running.await.unwrap().unwrap();
    db.drop_schema().await.unwrap();
}

#[tokio::test]
async fn the_url_can_turn_prepared_statements_off() {
    let schema = fresh_schema();
    let url = format!(
        "{}?schema={schema}&prepared_statements=false",
        bouncer_url()
    );
    let queue = Queue::connect(&url).await.unwrap();
    assert!(!queue.supports_notify());
    let id = queue.enqueue("email", &1u32).await.unwrap();
    let lease = queue.claim("email").await.unwrap().unwrap();
    assert_eq!(lease.id(), id);
    lease.complete().await.unwrap();
    assert_eq!(queue.len("email").await.unwrap(), 0);
    // A direct URL for LISTEN in the URL too, percent-encoded: an idle
    // worker hears another queue's enqueue at once.
    let listen =
        percent_encoding::utf8_percent_encode(&super::url(), percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let with_listen = format!("{url}&listen_url={listen}");
    let slow_poll = taskq::ConnectOptions {
        create: true,
        config: QueueConfig {
            poll_interval: Duration::from_secs(30),
            ..QueueConfig::default()
        },
    };
    let waiter = Queue::connect_with(&with_listen, slow_poll).await.unwrap();
    assert!(waiter.supports_notify());
    // On the direct URL: another place as far as this process's shared
    // wake-ups go, so only a notification can wake the waiter.
    let producer = Queue::connect(&format!("{}?schema={schema}", super::url()))
        .await
        .unwrap();
    let took = claim_after_enqueue(&waiter, &producer, "ping", async {
        tokio::time::sleep(Duration::from_millis(300)).await;
    })
    .await;
    assert!(
        took < Duration::from_secs(5),
        "heard through LISTEN, not the 30 s poll: {took:?}"
    );
    let garbled = format!("{url}&listen_url=%FF%FE");
    assert!(matches!(
        Queue::connect(&garbled).await,
        Err(Error::InvalidInput {
            field: "listen_url",
            ..
        })
    ));
    let bad = format!("{}?prepared_statements=maybe", bouncer_url());
    assert!(matches!(
        Queue::connect(&bad).await,
        Err(Error::InvalidInput { field: "url", .. })
    ));
    let config = PostgresConfig {
        listen_url: Some("not a url".to_owned()),
        ..behind_bouncer()
    };
    assert!(matches!(
        config.validate(),
        Err(Error::InvalidInput {
            field: "listen_url",
            ..
        })
    ));
    // The password of a direct URL stays out of the settings' debug text.
    let config = PostgresConfig {
        listen_url: Some("postgres://app:s3cret@db.internal/app".to_owned()),
        ..PostgresConfig::default()
    };
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[tokio::test]
async fn the_callers_own_transaction_through_the_pooler_enqueues_and_completes() {
    let db = bouncer_db().await;
    let queue = db.queue().await;
    let (mut client, connection) = tokio_postgres::connect(&bouncer_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let schema = db.schema.clone();
    // Several transactions in a row, each on whichever server connection
    // the pooler gives it: what is prepared in one is gone in the next.
    let mut kept = Vec::new();
    for n in 0..5 {
        let tx = client.transaction().await.unwrap();
        let task = NewTask::json("ship", &n).unwrap();
        let enqueued = postgres::enqueue_in(&tx, &schema, &task).await.unwrap();
        if n % 2 == 0 {
            tx.commit().await.unwrap();
            kept.push(enqueued.id);
        } else {
            tx.rollback().await.unwrap();
        }
    }
    let mut queued: Vec<TaskId> = taskq::testing::enqueued(&queue, "ship")
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    queued.sort();
    assert_eq!(queued, kept, "the committed ones, once each");
    for _ in 0..3 {
        let lease = queue.claim("ship").await.unwrap().unwrap();
        let tx = client.transaction().await.unwrap();
        let follow_ups = vec![NewTask::json("notify", &1).unwrap()];
        let ids = postgres::complete_in(&tx, &schema, &lease, follow_ups)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(ids.len(), 1);
        assert!(queue.get(lease.id()).await.unwrap().is_none());
    }
    assert_eq!(queue.len("notify").await.unwrap(), 3);
}
