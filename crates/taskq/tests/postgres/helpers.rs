//! `taskq::testing` on PostgreSQL: a fresh schema per test database, gone
//! after `drop_schema`, and no time travel (the server keeps the time).

use super::*;

#[tokio::test]
async fn a_test_schema_is_fresh_and_dropped_and_its_clock_is_the_servers() {
    let db = TestDatabase::postgres(&url());
    let other = TestDatabase::postgres(&url());
    let schema = db.schema().unwrap().to_owned();
    assert!(schema.starts_with("taskq_test_"), "{schema}");
    assert_ne!(Some(schema.as_str()), other.schema());
    let queue = db.queue().await.unwrap();
    queue.enqueue("email", &1u32).await.unwrap();
    taskq::testing::assert_enqueued(&queue, "email", serde_json::json!(1)).await;
    assert!(matches!(
        db.advance(Duration::from_secs(1)),
        Err(Error::InvalidInput { field: "clock", .. })
    ));
    drop(queue);
    let exists = "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1";
    let client = raw_client().await;
    let before: i64 = client.query_one(exists, &[&schema]).await.unwrap().get(0);
    assert_eq!(before, 1);
    db.drop_schema().await.unwrap();
    let after: i64 = client.query_one(exists, &[&schema]).await.unwrap().get(0);
    assert_eq!(after, 0, "the schema is gone");
}
