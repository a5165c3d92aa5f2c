//! The kept counts: folded tallies, live counts of uncounted tasks, triggers.

use super::*;

async fn count_rows(client: &tokio_postgres::Client, schema: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {schema}.taskq_tallies");
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

/// Waits up to 10 s until the count that `sql` selects is at most `most`
/// (the backend folds and adopts counts every second).
async fn until_count_at_most(client: &tokio_postgres::Client, sql: &str, most: i64, what: &str) {
    let reached = async {
        while client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) > most {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), reached)
        .await
        .is_err()
    {
        panic!("not within 10 s: {what}");
    }
}

/// The count changes that taskq's statements append are folded into one
/// row per action and state in the background, and the counts stay exact,
/// also for tasks enqueued inside the caller's own transaction, changes
/// made by hand in SQL (counted by triggers) and a TRUNCATE.
#[tokio::test]
async fn count_changes_are_folded_and_stay_exact() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    // A batch: counted at once (single enqueues are counted live, below).
    let batch = (0..30).map(|i| NewTask::json("a", &i).unwrap()).collect();
    queue.enqueue_many(batch).await.unwrap();
    let mut client = raw_client().await;
    let tx = client.transaction().await.unwrap();
    for i in 0..2 {
        postgres::enqueue_in(&tx, &db.schema, &NewTask::json("b", &i).unwrap())
            .await
            .unwrap();
    }
    // A change by hand later in the same transaction is counted too (by
    // the triggers: its statement is not one of taskq's).
    insert_by_hand(&tx, &db.schema, "b").await;
    // Seen from inside the transaction, where no fold can reach them yet:
    // a row of changes per taskq statement, and one per row changed by hand.
    let appended: i64 = tx
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.taskq_tallies WHERE action = 'b'",
                db.schema
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(appended, 3, "changes are appended");
    tx.commit().await.unwrap();
    for _ in 0..10 {
        claim_and_complete(&queue, "a").await;
    }
    let _running = queue.claim("a").await.unwrap().unwrap();
    // Running tasks are counted live, not tallied.
    let tallies = format!("SELECT count(*) FROM {}.taskq_tallies", db.schema);
    until_count_at_most(&client, &tallies, 2, "folded into (a, queued), (b, queued)").await;
    let stats = queue.stats().await.unwrap();
    let counts: Vec<_> = stats
        .iter()
        .map(|s| (s.action.as_str(), s.queued, s.running))
        .collect();
    assert_eq!(counts, [("a", 19, 1), ("b", 3, 0)]);
    assert_eq!(queue.len("a").await.unwrap(), 19);

    let by_hand = format!(
        "INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us)
             VALUES ('c', '\\x7b7d', 'queued', now(), 10, 1000000), ('c', '\\x7b7d', 'queued', now(), 10, 1000000);
         UPDATE {schema}.taskq_tasks SET state = 'failed', finished_at = now()
             WHERE id = (SELECT min(id) FROM {schema}.taskq_tasks WHERE action = 'c');
         UPDATE {schema}.taskq_tasks SET payload = '\\x5b5d' WHERE action = 'a';
         DELETE FROM {schema}.taskq_tasks WHERE id = (SELECT min(id) FROM {schema}.taskq_tasks WHERE action = 'b');",
        schema = db.schema
    );
    client.batch_execute(&by_hand).await.unwrap();
    let stats = queue.stats().await.unwrap();
    let counts: Vec<_> = stats
        .iter()
        .map(|s| (s.action.as_str(), s.queued, s.running, s.failed))
        .collect();
    assert_eq!(counts, [("a", 19, 1, 0), ("b", 2, 0, 0), ("c", 1, 0, 1)]);
    assert_eq!(queue.len("c").await.unwrap(), 1);
    client
        .batch_execute(&format!("TRUNCATE {}.taskq_tasks", db.schema))
        .await
        .unwrap();
    assert!(queue.stats().await.unwrap().is_empty());
    assert_eq!(queue.len("a").await.unwrap(), 0);
}

/// Every task's action and state as the table holds them, and as `stats`
/// reports them.
async fn counts_by_table_and_stats(
    client: &tokio_postgres::Client,
    schema: &str,
    queue: &Queue,
) -> (
    BTreeMap<(String, State), u64>,
    BTreeMap<(String, State), u64>,
) {
    let sql = format!("SELECT action, state, count(*) FROM {schema}.taskq_tasks GROUP BY 1, 2");
    let table = client
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let state: String = row.get(1);
            let n: i64 = row.get(2);
            ((row.get(0), state.parse().unwrap()), n as u64)
        })
        .collect();
    (table, conformance::reported_stats(queue).await)
}

/// A single enqueue inserts its task uncounted, without a count row:
/// `len` and `stats` count such tasks live in whatever state taskq or SQL
/// by hand moves them to, and the backend adopts them into the kept counts
/// once more than 10,000 wait.
#[tokio::test]
async fn single_enqueues_are_counted_live_until_adopted() {
    let db = postgres_db().await;
    let queue = db.queue_with(conformance::no_backoff()).await;
    let retaining = db
        .queue_with(QueueConfig {
            retain_completed: true,
            ..conformance::no_backoff()
        })
        .await;
    let client = raw_client().await;
    let schema = &db.schema;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(queue.enqueue("a", &i).await.unwrap());
    }
    assert_eq!(count_rows(&client, schema).await, 0, "no count rows");
    assert_eq!(queue.len("a").await.unwrap(), 12);

    // Through every state by taskq's statements.
    claim_and_complete(&queue, "a").await;
    claim_and_complete(&retaining, "a").await;
    let failed = queue.claim("a").await.unwrap().unwrap();
    let failed_id = failed.id();
    failed.fail_permanently("for good").await.unwrap();
    queue
        .claim("a")
        .await
        .unwrap()
        .unwrap()
        .fail("again")
        .await
        .unwrap();
    queue
        .claim("a")
        .await
        .unwrap()
        .unwrap()
        .release()
        .await
        .unwrap();
    let _running = queue.claim("a").await.unwrap().unwrap();
    queue.delete(ids[11]).await.unwrap();
    let (table, reported) = counts_by_table_and_stats(&client, schema, &queue).await;
    assert_eq!(reported, table, "after taskq's changes");
    queue.retry(failed_id).await.unwrap();
    assert_eq!(
        queue.purge(State::Succeeded, Duration::ZERO).await.unwrap(),
        1
    );
    let (table, reported) = counts_by_table_and_stats(&client, schema, &queue).await;
    assert_eq!(reported, table, "after a retry and a purge");
    assert_eq!(count_rows(&client, schema).await, 0, "still no count rows");

    changes_by_hand_are_counted(&client, schema, &queue).await;
    many_uncounted_tasks_are_adopted(&client, schema, &queue).await;
}

/// By hand: state changes, a delete, a counted task made uncounted and an
/// uncounted one made counted (the triggers count what is counted).
async fn changes_by_hand_are_counted(client: &tokio_postgres::Client, schema: &str, queue: &Queue) {
    insert_by_hand(client, schema, "a").await;
    let by_hand = format!(
        "UPDATE {schema}.taskq_tasks SET state = 'failed', finished_at = now()
             WHERE id = (SELECT min(id) FROM {schema}.taskq_tasks WHERE state = 'queued' AND NOT counted);
         DELETE FROM {schema}.taskq_tasks
             WHERE id = (SELECT max(id) FROM {schema}.taskq_tasks WHERE state = 'queued' AND NOT counted);
         UPDATE {schema}.taskq_tasks SET counted = true
             WHERE id = (SELECT min(id) FROM {schema}.taskq_tasks WHERE state = 'queued' AND NOT counted);
         UPDATE {schema}.taskq_tasks SET counted = false, action = 'b'
             WHERE id = (SELECT max(id) FROM {schema}.taskq_tasks WHERE counted);"
    );
    client.batch_execute(&by_hand).await.unwrap();
    let (table, reported) = counts_by_table_and_stats(client, schema, queue).await;
    assert_eq!(reported, table, "after changes by hand");
    let ready: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {schema}.taskq_tasks WHERE action = 'a' AND state = 'queued'"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(queue.len("a").await.unwrap(), ready as u64);
}

/// Many uncounted tasks (inserted by hand, as a single enqueue would
/// insert them): adopted by the next fold down to 10,000 at most, the
/// counts exact throughout.
async fn many_uncounted_tasks_are_adopted(
    client: &tokio_postgres::Client,
    schema: &str,
    queue: &Queue,
) {
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, counted)
                 SELECT 'c', '\\x7b7d', 'queued', now(), 10, 1000000, false FROM generate_series(1, 10500)"
            ),
            &[],
        )
        .await
        .unwrap();
    queue.enqueue("c", &0).await.unwrap();
    let uncounted = format!("SELECT count(*) FROM {schema}.taskq_tasks WHERE NOT counted");
    until_count_at_most(client, &uncounted, 10_000, "adopted down to 10,000").await;
    let (table, reported) = counts_by_table_and_stats(client, schema, queue).await;
    assert_eq!(reported, table, "after the adoption");
    assert_eq!(queue.len("c").await.unwrap(), 10_501);
}

/// A taskq of the previous schema version (2), still running during an
/// upgrade, appends its count rows to `taskq_counts` and marks its
/// statements with `taskq.counted`, which the current triggers do not
/// heed: they count its changes row by row, its rows are never read and
/// the backend empties them, and the counts stay exact.
#[tokio::test]
async fn changes_by_the_previous_version_are_counted_by_the_triggers() {
    let db = postgres_db().await;
    let queue = db.queue().await;
    let client = raw_client().await;
    let schema = &db.schema;
    // The previous version's statements, as it sent them.
    let old_insert = format!(
        "WITH counted AS (
             INSERT INTO {schema}.taskq_counts (action, state, n)
             SELECT 'a', 'queued', 1 WHERE (SELECT set_config('taskq.counted', 'on', true)) = 'on'
             RETURNING action
         )
         INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us)
         SELECT action, '\\x7b7d', 'queued', now(), 10, 60000000 FROM counted
         RETURNING id"
    );
    let old_claim = format!(
        "WITH claimed AS (
             UPDATE {schema}.taskq_tasks
             SET state = 'running', tries = tries + 1, expires = now() + interval '1 minute'
             WHERE id = $1 AND (SELECT set_config('taskq.counted', 'on', true)) = 'on'
             RETURNING action
         ), counted AS (
             INSERT INTO {schema}.taskq_counts (action, state, n)
             SELECT action, 'queued', -count(*) FROM claimed GROUP BY action
             UNION ALL
             SELECT action, 'running', count(*) FROM claimed GROUP BY action
         )
         SELECT 1 FROM claimed"
    );
    let old_complete = format!(
        "WITH completed AS (
             DELETE FROM {schema}.taskq_tasks
             WHERE id = $1 AND (SELECT set_config('taskq.counted', 'on', true)) = 'on'
             RETURNING action
         ), counted AS (
             INSERT INTO {schema}.taskq_counts (action, state, n)
             SELECT action, 'running', -count(*) FROM completed GROUP BY action
         )
         SELECT 1 FROM completed"
    );
    let uncounted = queue.enqueue("a", &1).await.unwrap().0;
    let counted: i64 = client.query_one(&old_insert, &[]).await.unwrap().get(0);
    let _ = client.query_one(&old_insert, &[]).await.unwrap();
    for (step, sql, id) in [
        ("an old claim of an uncounted task", &old_claim, uncounted),
        ("an old claim of a counted task", &old_claim, counted),
        ("an old completion", &old_complete, counted),
        (
            "an old completion of an uncounted task",
            &old_complete,
            uncounted,
        ),
    ] {
        assert_eq!(client.execute(sql, &[&id]).await.unwrap(), 1, "{step}");
        let (table, reported) = counts_by_table_and_stats(&client, schema, &queue).await;
        assert_eq!(reported, table, "after {step}");
    }
    assert_eq!(queue.len("a").await.unwrap(), 1);
    // Changes make the backend fold at its next tick.
    queue.enqueue("b", &1).await.unwrap();
    let legacy = format!("SELECT count(*) FROM {schema}.taskq_counts");
    until_count_at_most(
        &client,
        &legacy,
        0,
        "the previous version's count rows are emptied",
    )
    .await;
}
