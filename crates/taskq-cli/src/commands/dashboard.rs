//! `taskq dashboard`

use std::net::SocketAddr;

use serde_json::json;
use taskq::Queue;
use taskq_web::{DashboardConfig, ServeConfig};

use crate::failure::Failure;
use crate::output::Output;

/// Serve the web dashboard: see every action's tasks, a failed task's
/// errors and attempts, and retry, cancel, delete, purge, pause or resume
/// from the browser. Prometheus metrics are at /metrics.
///
/// It listens on loopback (127.0.0.1:7380) unless told otherwise; any
/// other address needs a token, which the browser asks for as a password
/// (any user name) and scripts send as `Authorization: Bearer TOKEN`.
/// Every change is a form carrying a CSRF token; --read-only shows no
/// buttons and refuses every change. SIGINT (Ctrl-C) or SIGTERM stops it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  taskq dashboard\n  taskq dashboard --read-only\n  TASKQ_DASHBOARD_TOKEN=$(openssl rand -hex 16) taskq dashboard --listen 0.0.0.0:7380 --allow-host queue.internal"
)]
pub struct Args {
    /// The address to listen on.
    #[arg(long, default_value = taskq_web::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Show no buttons and refuse every change.
    #[arg(long)]
    pub read_only: bool,
    /// The secret every request must carry; required to listen anywhere
    /// but loopback.
    #[arg(long, env = "TASKQ_DASHBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A host name the dashboard is reached by, besides the listening
    /// address (requests naming any other host are refused, against DNS
    /// rebinding); repeat for several.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
}

pub async fn run(args: Args, queue: Queue, database: &str, out: &Output) -> Result<(), Failure> {
    let config = ServeConfig {
        listen: args.listen,
        extra_hosts: args.allow_hosts,
        dashboard: DashboardConfig {
            read_only: args.read_only,
            token: args.token,
            database: Some(taskq::redact_url(database)),
            ..DashboardConfig::default()
        },
    };
    let mut announced = Ok(());
    let served = taskq_web::serve(
        queue,
        config,
        |bound| {
            let url = format!("http://{bound}/");
            announced = if out.json {
                out.json(&json!({"listening": bound.to_string(), "url": url}))
            } else {
                out.line(format!("taskq dashboard at {url} (Ctrl-C stops it)"))
            };
        },
        taskq::worker::shutdown_signal(),
    )
    .await;
    announced?;
    served.map_err(|error| match error {
        taskq_web::DashboardError::Serve(_) | taskq_web::DashboardError::Listen { .. } => {
            Failure::other(error.to_string())
        }
        _ => Failure::invalid(error.to_string()),
    })
}
