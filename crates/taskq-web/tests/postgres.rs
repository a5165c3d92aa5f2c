//! The dashboard on PostgreSQL: the same router over a real server
//! (`./scripts/test` starts one and sets `TASKQ_TEST_POSTGRES_URL`), each
//! test in a schema of its own.

mod common;

use axum::http::StatusCode;
use common::{get, quick_config, seed, Browser};
use taskq::State;
use taskq_web::{router, DashboardConfig};

async fn postgres_queue() -> taskq::Queue {
    let url = std::env::var("TASKQ_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("the PostgreSQL tests need a server: run ./scripts/test, which starts a throwaway one, or set TASKQ_TEST_POSTGRES_URL")
    });
    let schema = format!(
        "web_{:016x}",
        std::process::id() as u64 * 7919
            + std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as u64
    );
    let separator = if url.contains('?') { '&' } else { '?' };
    let options = taskq::ConnectOptions {
        config: quick_config(),
        ..taskq::ConnectOptions::default()
    };
    taskq::Queue::connect_with(&format!("{url}{separator}schema={schema}"), options)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_filters_and_a_retry_work_on_postgres() {
    let queue = postgres_queue().await;
    let seeded = seed(&queue).await;
    let dashboard = router(queue.clone(), DashboardConfig::default()).unwrap();
    let overview = get(&dashboard, "/").await.expect(StatusCode::OK);
    assert!(
        overview.body.contains("state=failed\">2</a>"),
        "{}",
        overview.body
    );
    let list = get(&dashboard, "/tasks?state=failed&error=timeout")
        .await
        .expect(StatusCode::OK);
    assert!(list.body.contains(&format!("/tasks/{}\"", seeded.failed)));
    assert!(!list
        .body
        .contains(&format!("/tasks/{}\"", seeded.failed_other)));
    let parent = get(&dashboard, &format!("/tasks/{}", seeded.parent))
        .await
        .expect(StatusCode::OK);
    assert!(parent
        .body
        .contains(&format!("/tasks/{}\"", seeded.children[1])));
    let metrics = get(&dashboard, "/metrics").await.expect(StatusCode::OK);
    assert!(
        metrics
            .body
            .contains("taskq_tasks{action=\"email\",state=\"queued\"} 3"),
        "{}",
        metrics.body
    );

    let browser = Browser::open(dashboard).await;
    browser
        .post(&format!("/tasks/{}/retry", seeded.failed), &[])
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        queue.get(seeded.failed).await.unwrap().unwrap().state,
        State::Queued
    );
    browser
        .post("/pause", &[("action", "email")])
        .await
        .expect(StatusCode::OK);
    assert_eq!(queue.paused().await.unwrap(), ["email", "report"]);
}
