//! The plans of the statements: indexes, not scans.

use super::*;

/// The plan PostgreSQL picks for one of taskq's statements, as a prepared
/// statement would run it: a custom plan, or the generic one it falls back
/// to after five executions.
async fn plan(
    client: &tokio_postgres::Client,
    schema: &str,
    (sql, types, args): (&str, &str, &str),
    generic: bool,
) -> String {
    let mode = if generic {
        "force_generic_plan"
    } else {
        "auto"
    };
    let sql = sql.replace("{schema}", &format!("\"{schema}\""));
    client
        .batch_execute(&format!(
            "DEALLOCATE ALL; SET plan_cache_mode = {mode};
             PREPARE statement({types}) AS {sql}"
        ))
        .await
        .unwrap();
    let rows = client
        .query(&format!("EXPLAIN EXECUTE statement({args})"), &[])
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A schema holding one task enqueued by taskq and 20,000 queued by
/// hand, of which the ids in `running` and in `failed` then move to those
/// states; the planner's statistics are taken before the moves (`stale`)
/// or after them.
async fn tasks_for_plans(
    running: (i64, i64),
    failed: (i64, i64),
    stale: bool,
) -> (PostgresDb, Queue, tokio_postgres::Client) {
    let db = postgres_db().await;
    let queue = db.queue().await;
    queue.enqueue("a", &1).await.unwrap();
    let client = raw_client().await;
    let schema = &db.schema;
    let analyze = format!("ANALYZE {schema}.taskq_tasks;");
    let (before, after) = if stale {
        (analyze.as_str(), "")
    } else {
        ("", analyze.as_str())
    };
    client
        .batch_execute(&format!(
            "INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us)
                 SELECT 'a', '\\x7b7d', 'queued', now(), 10, 60000000 FROM generate_series(1, 20000);
             {before}
             UPDATE {schema}.taskq_tasks SET state = 'running', expires = now() + interval '1 minute'
                 WHERE id BETWEEN {} AND {};
             UPDATE {schema}.taskq_tasks SET state = 'failed', finished_at = now()
                 WHERE id BETWEEN {} AND {};
             {after}",
            running.0, running.1, failed.0, failed.1
        ))
        .await
        .unwrap();
    (db, queue, client)
}

#[tokio::test]
async fn statements_read_only_the_tasks_they_need_however_many_run_or_failed() {
    // Statistics taken while no task ran or had failed, then many do: the
    // index of leases (every running task) or of finished tasks (every
    // failed one) must not stand in for the ids.
    let (db, _queue, client) = tasks_for_plans((1, 5000), (5001, 10000), true).await;
    let schema = &db.schema;
    let one = "bigint, bigint";
    let many = "bigint[], bigint[]";
    let cancel_one = include_str!("../../src/backend/postgres/sql/task_cancel.sql")
        .replace("{target}", "id = $1::bigint");
    let statements = [
        (
            include_str!("../../src/backend/postgres/sql/task_complete.sql"),
            one,
            "4001, 0",
        ),
        (
            include_str!("../../src/backend/postgres/sql/task_complete_retain.sql"),
            one,
            "4001, 0, NULL",
        ),
        (
            include_str!("../../src/backend/postgres/sql/task_extend.sql"),
            "bigint, bigint, bigint",
            "4001, 0, 1000",
        ),
        (
            include_str!("../../src/backend/postgres/sql/task_fail.sql"),
            "bigint, bigint, text, bigint, text",
            "4001, 0, 'error', NULL, 'failed'",
        ),
        (
            include_str!("../../src/backend/postgres/sql/task_release.sql"),
            "bigint, bigint, bigint, text",
            "4001, 0, 0, 'channel'",
        ),
        (
            include_str!("../../src/backend/postgres/sql/task_complete_many.sql"),
            many,
            "'{4001,4002,4003}', '{0,0,0}'",
        ),
        (
            include_str!("../../src/backend/postgres/sql/task_complete_many_retain.sql"),
            many,
            "'{4001,4002,4003}', '{0,0,0}'",
        ),
        (
            include_str!("../../src/backend/postgres/sql/task_retry.sql"),
            "bigint, text, integer, text",
            "9001, 'channel', 0, NULL",
        ),
        (&cancel_one, "bigint, text", "4001, 'channel'"),
    ];
    for statement in statements {
        for generic in [false, true] {
            let plan = plan(&client, schema, statement, generic).await;
            assert!(
                plan.contains("taskq_tasks_pkey")
                    && !plan.contains("taskq_tasks_leased")
                    && !plan.contains("taskq_tasks_finished"),
                "generic plan: {generic}, for\n{}\nreads:\n{plan}",
                statement.0
            );
        }
    }
    // A purge reads the finished tasks only, whatever state it is given,
    // in a batch or all at once.
    for limit in ["500", "NULL"] {
        let args = format!("'failed', 0, {limit}");
        let purge = (
            include_str!("../../src/backend/postgres/sql/task_purge.sql"),
            "text, bigint, bigint",
            args.as_str(),
        );
        for generic in [false, true] {
            let plan = plan(&client, schema, purge, generic).await;
            assert!(
                plan.contains("taskq_tasks_finished") && !plan.contains("Seq Scan"),
                "purge of {limit}, generic plan: {generic}, reads:\n{plan}"
            );
        }
    }
}

/// The text of the list statement the backend sent last in `schema`, as
/// the server saw it.
async fn last_list_statement(client: &tokio_postgres::Client, schema: &str) -> String {
    let row = client
        .query_one(
            "SELECT query FROM pg_stat_activity
             WHERE query LIKE '%ORDER BY id%LIMIT $4%' AND position($1 in query) > 0
             ORDER BY query_start DESC LIMIT 1",
            &[&schema],
        )
        .await
        .unwrap();
    let sql: String = row.get(0);
    assert!(sql.trim_end().ends_with("LIMIT $4"), "cut short: {sql}");
    sql
}

#[tokio::test]
async fn listing_a_state_few_tasks_are_in_reads_only_those() {
    let (db, queue, client) = tasks_for_plans((100, 104), (19000, 19009), false).await;
    let schema = &db.schema;
    let types = "text, text, bigint, bigint, text, bigint";
    // (state, action, what the plan reads, how many the page holds)
    let cases = [
        (Some(State::Failed), None, "taskq_tasks_finished", 10),
        (Some(State::Failed), Some("a"), "taskq_tasks_finished", 10),
        (Some(State::Running), None, "taskq_tasks_leased", 5),
        (Some(State::Queued), None, "taskq_tasks_pkey", 50),
        (None, Some("a"), "taskq_tasks_pkey", 50),
    ];
    for (state, action, index, count) in cases {
        for order in [taskq::Order::OldestFirst, taskq::Order::NewestFirst] {
            let options = taskq::ListOptions {
                action: action.map(str::to_owned),
                state,
                order,
                limit: 50,
                ..Default::default()
            };
            let page = queue.list(&options).await.unwrap();
            assert_eq!(page.len(), count, "{options:?}");
            assert!(page.iter().all(|t| state.is_none_or(|s| t.state == s)));
            let sql = last_list_statement(&client, schema).await;
            let start = match order {
                taskq::Order::OldestFirst => i64::MIN,
                taskq::Order::NewestFirst => i64::MAX,
            };
            let args = format!(
                "{}, {}, {start}, 50, NULL, NULL",
                action.map_or("NULL".to_owned(), |a| format!("'{a}'")),
                state.map_or("NULL".to_owned(), |s| format!("'{s}'"))
            );
            for generic in [false, true] {
                let plan = plan(&client, schema, (&sql, types, &args), generic).await;
                assert!(
                    plan.contains(index) && !plan.contains("Seq Scan"),
                    "{options:?}, generic plan: {generic}, reads:\n{plan}"
                );
            }
        }
    }
    // The follow-ups of a task, through the index of parents.
    let options = taskq::ListOptions {
        parent: Some(taskq::TaskId(1)),
        error_contains: Some("x".into()),
        ..Default::default()
    };
    assert!(queue.list(&options).await.unwrap().is_empty());
    let sql = last_list_statement(&client, schema).await;
    let args = format!("NULL, NULL, {}, 100, 'x', 1", i64::MIN);
    for generic in [false, true] {
        let plan = plan(&client, schema, (&sql, types, &args), generic).await;
        assert!(
            plan.contains("taskq_tasks_parent") && !plan.contains("Seq Scan"),
            "generic plan: {generic}, reads:\n{plan}"
        );
    }
}
