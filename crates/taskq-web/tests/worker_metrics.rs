//! `/metrics` with the series of this process's workers: the recorder
//! that `install_metrics_recorder` installs (a binary of its own, as a
//! process has one recorder) collects what a worker counts, and the page
//! gives it after the queue's series.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{get, sqlite_queue};
use taskq::worker::{Outcome, TaskContext, Worker, WorkerConfig};
use taskq_web::{install_metrics_recorder, router, DashboardConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_include_the_workers_counts_and_histograms() {
    let handle = install_metrics_recorder().unwrap();
    assert!(
        install_metrics_recorder().is_err(),
        "a second recorder is refused"
    );
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(&dir).await;
    let mut worker = Worker::new(queue.clone(), WorkerConfig::default());
    worker
        .handle("resize", |n: u32, _ctx: TaskContext| async move {
            if n == 0 {
                Ok::<_, String>(Outcome::fail("corrupt image"))
            } else {
                Ok(Outcome::complete())
            }
        })
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    for n in 0..5u32 {
        queue.enqueue("resize", &n).await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while queue.len("resize").await.unwrap() > 0 || queue.stats().await.unwrap()[0].running > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker ran the tasks"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A schedule's ticks are counted by whoever enqueues them.
    let beat = taskq::Schedule::every("beat", "beat", Duration::from_secs(1));
    queue.schedules().upsert(beat).await.unwrap();
    while queue
        .schedules()
        .get("beat")
        .await
        .unwrap()
        .unwrap()
        .last_task
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker took a tick"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let config = DashboardConfig {
        worker_metrics: Some(handle),
        ..DashboardConfig::default()
    };
    let router = router(queue.clone(), config).unwrap();
    let page = get(&router, "/metrics").await.expect(StatusCode::OK);
    for line in [
        "taskq_tasks{action=\"resize\",state=\"failed\"} 1",
        "taskq_worker_completed_total{action=\"resize\"} 4",
        "taskq_worker_failed_total{action=\"resize\"} 1",
        "# TYPE taskq_worker_run_seconds histogram",
        "taskq_worker_run_seconds_bucket{action=\"resize\",le=\"+Inf\"} 5",
        "taskq_worker_wait_seconds_count{action=\"resize\"} 5",
        "taskq_worker_in_flight{action=\"resize\"} 0",
        "taskq_schedule_ticks_total{schedule=\"beat\"} ",
    ] {
        assert!(page.body.contains(line), "{line} missing:\n{}", page.body);
    }
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
