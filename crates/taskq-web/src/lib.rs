//! The taskq dashboard: see and fix task queues in a browser, and export
//! their metrics to Prometheus.
//!
//! [`router`] gives an axum [`Router`] with every page, to
//! mount in an application's own router under a path of its choosing and
//! behind its own authentication; [`serve`] runs it on its own, as
//! `taskq dashboard` does. Pages are rendered on the server and read
//! without JavaScript; a small script only refreshes them live when asked
//! to.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let queue = taskq::Queue::open_sqlite(dir.path().join("jobs.db")).await?;
//! let dashboard = taskq_web::router(queue, taskq_web::DashboardConfig::default())?;
//! // Under /admin/tasks of the application's own router, behind its own
//! // authentication; serve it as usual:
//! // axum::serve(tokio::net::TcpListener::bind(addr).await?, app).await?
//! let app: axum::Router = axum::Router::new().nest("/admin/tasks", dashboard);
//! # drop(app);
//! # Ok(())
//! # }
//! ```
//!
//! What it offers:
//!
//! - **Overview** (`/`): per action, the tasks in each state, whether it
//!   is paused, how long the oldest ready task has waited, and charts of
//!   completions and failures over the last hour; pause and resume.
//! - **Tasks** (`/tasks`): filter by action, state and text of the last
//!   error, newest or oldest first, a page at a time; retry or delete all
//!   that match.
//! - **A task** (`/tasks/{id}`): payload, options, times, every kept
//!   attempt with its error, the worker holding it, its parent and
//!   follow-ups; retry, cancel or delete it.
//! - **Metrics** (`/metrics`): the Prometheus text format, described in
//!   `docs/metrics.md`.
//!
//! Every change is a POST carrying a CSRF token, destructive ones after a
//! confirmation page; [`DashboardConfig::read_only`] hides and refuses
//! them. Responses carry a content security policy without inline
//! scripts and refuse to be framed. See [`DashboardConfig`] for the
//! token and the `Host` check. A change whose `Origin` names another host
//! than its `Host` header is refused, so a reverse proxy in front must
//! pass the `Host` header through.

mod actions;
mod assets;
mod chart;
mod config;
mod metrics;
mod overview;
mod page;
mod security;
mod task;
mod tasks;

use axum::routing::{get, post};
use axum::Router;

pub use config::{
    install_metrics_recorder, serve, DashboardConfig, DashboardError, ServeConfig, DEFAULT_LISTEN,
};

/// What every handler reads: the queue and the settings.
#[derive(Clone)]
struct App {
    queue: taskq::Queue,
    config: std::sync::Arc<DashboardConfig>,
}

/// The dashboard's pages and actions, for `queue`, as a router to serve
/// or to nest in an application's own (links follow the path it is
/// nested under). Fails when the settings are unusable (an empty token,
/// an empty list of allowed hosts).
pub fn router(queue: taskq::Queue, config: DashboardConfig) -> Result<Router, DashboardError> {
    config.validate()?;
    let app = App {
        queue,
        config: std::sync::Arc::new(config),
    };
    let routes = Router::new()
        .route("/", get(overview::page))
        .route("/tasks", get(tasks::page))
        .route("/tasks/{id}", get(task::page))
        .route("/tasks/{id}/retry", post(actions::retry_one))
        .route("/tasks/{id}/cancel", post(actions::cancel_one))
        .route(
            "/tasks/{id}/delete",
            get(actions::confirm_delete_one).post(actions::delete_one),
        )
        .route("/retry-matching", post(actions::retry_matching))
        .route(
            "/delete-matching",
            get(actions::confirm_delete_matching).post(actions::delete_matching),
        )
        .route("/purge", get(actions::confirm_purge).post(actions::purge))
        .route("/pause", post(actions::pause))
        .route("/resume", post(actions::resume))
        .route("/schedules/pause", post(actions::pause_schedule))
        .route("/schedules/resume", post(actions::resume_schedule))
        .route("/schedules/run-now", post(actions::run_schedule_now))
        .route("/metrics", get(metrics::page))
        .route("/assets/{file}", get(assets::file))
        .fallback(page::not_found)
        .with_state(app.clone());
    Ok(security::wrap(routes, app))
}
