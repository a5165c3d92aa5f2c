//! Wake-up notifications: sent only while another session listens.

use super::*;

#[tokio::test]
async fn notifications_go_out_only_when_another_session_listens() {
    // The longest schema name: the listeners' application_name is cut by
    // the server, and must still be recognized.
    let db = PostgresDb::in_schema(format!(
        "{:w<width$}",
        fresh_schema(),
        width = postgres::MAX_SCHEMA_LEN
    ));
    let slow_poll = QueueConfig {
        poll_interval: Duration::from_secs(30),
        ..QueueConfig::default()
    };
    let mine = db.queue_with(slow_poll.clone()).await;

    // A session that hears the channel but is no taskq listener.
    let (client, mut connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(note) = message {
                let _ = heard_tx.send(note.payload().to_owned());
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN \"taskq_{}\"", db.schema))
        .await
        .unwrap();

    // Only this backend listens: its own waiter is woken in the process,
    // and no notification is sent.
    let latency = claim_after_enqueue(
        &mine,
        &mine,
        "mine",
        until_listening(&client, &db.schema, 1),
    )
    .await;
    assert!(latency < Duration::from_secs(5), "woken: {latency:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(heard.try_recv().is_err(), "nobody else listened");

    // Another backend (as if another process) waits: once the last check
    // for listeners is stale (1 s), enqueues notify it.
    let theirs = db.queue_with(slow_poll).await;
    let settle = async {
        until_listening(&client, &db.schema, 2).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    };
    let latency = claim_after_enqueue(&theirs, &mine, "theirs", settle).await;
    assert!(
        latency < Duration::from_secs(5),
        "woken, not polled: {latency:?}"
    );
    assert_eq!(heard.recv().await.as_deref(), Some("theirs"));

    // Within a second of that check, an enqueue sends its notification
    // itself, right behind its insert.
    let settle = tokio::time::sleep(Duration::from_millis(100));
    let latency = claim_after_enqueue(&theirs, &mine, "theirs", settle).await;
    assert!(
        latency < Duration::from_secs(5),
        "woken, not polled: {latency:?}"
    );
    let again = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await;
    assert_eq!(again.unwrap().as_deref(), Some("theirs"));
}
