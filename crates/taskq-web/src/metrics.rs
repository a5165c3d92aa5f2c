//! `GET /metrics`: the queue's series in the Prometheus text format,
//! followed by those of this process's workers when a recorder was
//! installed for them (see docs/metrics.md).

use std::time::SystemTime;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics::{describe_gauge, gauge, Unit};
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::App;

/// The queue's series, read from `stats` at each scrape (the kept
/// counts: cheap at any size), written by a recorder of their own so
/// that actions gone since the last scrape leave no stale series.
pub(crate) async fn page(State(app): State<App>) -> Response {
    let stats = match app.queue.stats().await {
        Ok(stats) => stats,
        Err(error) => {
            tracing::error!(%error, "the metrics could not be read");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the queue's counts could not be read; the server's log says why\n",
            )
                .into_response();
        }
    };
    let recorder = PrometheusBuilder::new().build_recorder();
    let now = SystemTime::now();
    metrics::with_local_recorder(&recorder, || {
        describe_gauge!("taskq_tasks", "Tasks per action and state.");
        describe_gauge!(
            "taskq_oldest_ready_age_seconds",
            Unit::Seconds,
            "How long the longest-waiting ready task of the action has been ready; 0 when none is."
        );
        describe_gauge!(
            "taskq_action_paused",
            "1 when the action is paused, else 0."
        );
        for row in &stats {
            for state in taskq::State::ALL {
                gauge!("taskq_tasks", "action" => row.action.clone(), "state" => state.as_str())
                    .set(row.get(state) as f64);
            }
            let age = row
                .oldest_ready
                .and_then(|at| now.duration_since(at).ok())
                .map_or(0.0, |age| age.as_secs_f64());
            gauge!("taskq_oldest_ready_age_seconds", "action" => row.action.clone()).set(age);
            gauge!("taskq_action_paused", "action" => row.action.clone()).set(if row.paused {
                1.0
            } else {
                0.0
            });
        }
    });
    let mut text = recorder.handle().render();
    if let Some(workers) = &app.config.worker_metrics {
        text.push_str(&workers.render());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
