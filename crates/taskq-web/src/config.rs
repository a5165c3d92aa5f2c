//! The dashboard's settings, and serving it on its own.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Where `taskq dashboard` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7380";

/// The dashboard's settings. Every field has a default.
#[derive(Clone, Debug, Default)]
pub struct DashboardConfig {
    /// Show no buttons and refuse every change (403). Default: `false`.
    pub read_only: bool,
    /// A secret every request must carry: as `Authorization: Bearer
    /// TOKEN`, or as the password of HTTP basic authentication (any user
    /// name), which browsers ask for. Default: none (the application's own
    /// authentication, or loopback only, protects the pages).
    pub token: Option<String>,
    /// The host names (without port) the `Host` header may name; others
    /// are refused with 421, so that a web page on another site cannot
    /// reach a dashboard on loopback through a DNS name of its own
    /// (DNS rebinding). Default: `None`, any host (for an application
    /// behind its own proxy); [`serve`] sets the names of the address it
    /// listens on.
    pub allowed_hosts: Option<Vec<String>>,
    /// How the database is named on the pages; give one without a
    /// password ([`taskq::redact_url`]). Default: none shown.
    pub database: Option<String>,
    /// The series of this process's workers, from the recorder
    /// [`install_metrics_recorder`] installed; `/metrics` appends them to
    /// the queue's. Default: none.
    pub worker_metrics: Option<PrometheusHandle>,
}

impl DashboardConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), DashboardError> {
        if self
            .token
            .as_deref()
            .is_some_and(|token| token.trim().is_empty())
        {
            return Err(DashboardError::EmptyToken);
        }
        if self.allowed_hosts.as_ref().is_some_and(Vec::is_empty) {
            return Err(DashboardError::NoHosts);
        }
        Ok(())
    }
}

/// Why the dashboard cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The token is empty.
    #[error("the token is empty; give a long random one")]
    EmptyToken,
    /// The list of allowed hosts is empty: every request would be refused.
    #[error("the list of allowed hosts is empty")]
    NoHosts,
    /// The address is not loopback and no token was given.
    #[error("{listen} can be reached from other machines: give a token (--token or TASKQ_DASHBOARD_TOKEN) to listen there, or listen on 127.0.0.1")]
    TokenRequired {
        /// The address asked for.
        listen: SocketAddr,
    },
    /// The address could not be listened on.
    #[error("could not listen on {listen}: {source}")]
    Listen {
        /// The address asked for.
        listen: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving stopped with an error.
    #[error("the dashboard stopped: {0}")]
    Serve(std::io::Error),
    /// The metrics recorder could not be installed (another one is).
    #[error("could not install the metrics recorder: {0}")]
    Recorder(String),
}

/// How [`serve`] runs the dashboard.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The address to listen on. Default: [`DEFAULT_LISTEN`], loopback.
    /// Any other address needs a token.
    pub listen: SocketAddr,
    /// Host names the `Host` header may name besides the listening
    /// address's own (and `localhost` when it is loopback): the names the
    /// dashboard is reached by.
    pub extra_hosts: Vec<String>,
    /// The pages' settings.
    pub dashboard: DashboardConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: DEFAULT_LISTEN.parse().expect("a valid address"),
            extra_hosts: Vec::new(),
            dashboard: DashboardConfig::default(),
        }
    }
}

impl ServeConfig {
    /// The dashboard settings with the allowed hosts of the listening
    /// address, after checking that an address other machines can reach
    /// has a token.
    pub fn checked(&self) -> Result<DashboardConfig, DashboardError> {
        let loopback = self.listen.ip().is_loopback();
        if !loopback && self.dashboard.token.is_none() {
            return Err(DashboardError::TokenRequired {
                listen: self.listen,
            });
        }
        let mut hosts = self.extra_hosts.clone();
        let ip = self.listen.ip();
        if !ip.is_unspecified() {
            hosts.push(match ip {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                std::net::IpAddr::V4(v4) => v4.to_string(),
            });
        }
        if loopback {
            hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(str::to_owned));
        }
        let mut config = self.dashboard.clone();
        // Any address of the machine, with a token: the names it is
        // reached by are not known, and the token keeps other sites out.
        config.allowed_hosts = (!hosts.is_empty()).then_some(hosts);
        config.validate()?;
        Ok(config)
    }
}

/// Serves the dashboard of `queue` until `shutdown` resolves: listens on
/// [`ServeConfig::listen`] (refusing an address other machines can reach
/// without a token), allows the `Host` names of that address, and calls
/// `ready` with the address once it listens.
pub async fn serve(
    queue: taskq::Queue,
    config: ServeConfig,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DashboardError> {
    let dashboard = config.checked()?;
    let app = crate::router(queue, dashboard)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| DashboardError::Listen {
            listen: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(DashboardError::Serve)?;
    ready(bound);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(DashboardError::Serve)
}

/// The bounds, in seconds, of the histogram buckets of the workers' run
/// and wait times.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0,
];

/// Installs a Prometheus recorder as the process's `metrics` recorder
/// (workers' times as histograms) and returns its handle, for
/// [`DashboardConfig::worker_metrics`]. Call it before starting workers:
/// they register their series when they start. An application that has
/// a recorder of its own already gets the workers' series there instead.
pub fn install_metrics_recorder() -> Result<PrometheusHandle, DashboardError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Prefix("taskq_worker_".to_owned()), SECONDS_BUCKETS)
        .map_err(|e| DashboardError::Recorder(e.to_string()))?
        .install_recorder()
        .map_err(|e| DashboardError::Recorder(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_listens_without_a_token() {
        let at = |listen: &str, token: Option<&str>| ServeConfig {
            listen: listen.parse().unwrap(),
            dashboard: DashboardConfig {
                token: token.map(str::to_owned),
                ..DashboardConfig::default()
            },
            ..ServeConfig::default()
        };
        let hosts = at("127.0.0.1:7380", None).checked().unwrap().allowed_hosts;
        assert!(hosts.unwrap().contains(&"localhost".to_owned()));
        assert!(at("[::1]:7380", None).checked().is_ok());
        for open in ["0.0.0.0:7380", "192.168.1.5:80", "[::]:7380"] {
            assert!(matches!(
                at(open, None).checked(),
                Err(DashboardError::TokenRequired { .. })
            ));
        }
        let open = at("192.168.1.5:80", Some("secret")).checked().unwrap();
        assert_eq!(open.allowed_hosts.unwrap(), ["192.168.1.5"]);
        let any = at("0.0.0.0:80", Some("secret")).checked().unwrap();
        assert_eq!(any.allowed_hosts, None);
        assert!(matches!(
            at("0.0.0.0:80", Some(" ")).checked(),
            Err(DashboardError::EmptyToken)
        ));
    }
}
