//! Settings of the PostgreSQL backend, and the schema name: validated,
//! quoted, taken out of a URL.

use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::options::validate_duration;

/// The longest schema name taskq accepts.
pub const MAX_SCHEMA_LEN: usize = 50;

/// Settings of a [`PostgresBackend`](super::PostgresBackend). Every field has a default.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// The schema that holds taskq's tables: lower-case letters, digits
    /// and underscores, not starting with a digit, at most
    /// [`MAX_SCHEMA_LEN`] long. Created by the migration. Default: `taskq`.
    pub schema: String,
    /// The most pooled connections. Default: 16.
    pub pool_size: usize,
    /// How long to wait for a connection, new or from the pool, before
    /// failing with a connection error. Default: 10 seconds.
    pub connect_timeout: Duration,
    /// Create or upgrade the schema when connecting. Default: `true`.
    /// When `false` and the schema is older than this build needs,
    /// operations fail with [`Error::SchemaTooOld`] until it is migrated
    /// (by [`Queue::migrate`](crate::Queue::migrate) or another process).
    pub migrate: bool,
    /// Dead rows past which this process vacuums `taskq_tasks` or
    /// `taskq_tallies` itself (`VACUUM (SKIP_LOCKED)`) while it writes,
    /// between autovacuum's rounds, which come once a minute at most: a
    /// busy queue leaves two dead rows per task. At 600 tasks a second,
    /// `Some(5_000)` keeps them under 10,000 where autovacuum alone lets
    /// 70,000 pile up; but while long transactions hold old rows (a
    /// pinned xmin horizon, REPEATABLE READ reports) its vacuums of the
    /// grown table slowed claims in `BENCHMARKS.md` (session 13), so it is
    /// off unless asked for. Needs a role that owns the tables (the one
    /// that migrated them); with another, the tables are left to
    /// autovacuum and a log line says so. Default: `None`; at least 100.
    /// Also set by `vacuum_after=N` in a URL given to `Queue::connect`.
    pub vacuum_after: Option<u64>,
    /// Prepare each statement once per connection and reuse it (`true`,
    /// the default: the fastest). Set `false` when the URL leads to a
    /// pooler in transaction mode (PgBouncer's `pool_mode = transaction`
    /// before version 1.21, and most hosted poolers), which hands each
    /// transaction whichever server connection is free, so prepared
    /// statements do not last: each statement then goes out unprepared,
    /// with its parameter types, in one round trip, and statements that
    /// are otherwise sent together go one after the other. Also set by
    /// `prepared_statements=false` in a URL given to
    /// [`Queue::connect`](crate::Queue::connect) (and so the `taskq` command).
    pub prepared_statements: bool,
    /// A direct URL (not through the pooler) for the one session per
    /// process that `LISTEN`s for other processes' enqueues, which a
    /// pooler in transaction mode cannot keep. `None` (the default): the
    /// session uses the backend's URL, except with `prepared_statements:
    /// false`, where there is no session and idle workers poll every
    /// `QueueConfig::poll_interval` (a log line says so once). Also set
    /// by `listen_url=URL`, percent-encoded, in a URL given to `Queue::connect`
    /// (`listen_url=postgres%3A%2F%2Fapp%40db.internal%2Fapp`).
    pub listen_url: Option<String>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("migrate", &self.migrate)
            .field("vacuum_after", &self.vacuum_after)
            .field("prepared_statements", &self.prepared_statements)
            .field(
                "listen_url",
                &self.listen_url.as_deref().map(crate::backend::redact_url),
            )
            .finish()
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            schema: "taskq".to_string(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
            migrate: true,
            vacuum_after: None,
            prepared_statements: true,
            listen_url: None,
        }
    }
}

impl PostgresConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        validate_schema(&self.schema)?;
        if self.pool_size == 0 {
            return Err(Error::invalid("pool_size", "must be at least 1"));
        }
        if self.vacuum_after.is_some_and(|n| n < 100) {
            return Err(Error::invalid("vacuum_after", "must be at least 100"));
        }
        if let Some(url) = &self.listen_url {
            parse_url("listen_url", url)?;
        }
        validate_duration("connect_timeout", self.connect_timeout, false)
    }

    /// Where the `LISTEN` session of a backend on `pg_config` connects
    /// (see [`listen_url`](Self::listen_url)); `None`: nowhere.
    pub(super) fn listen_config(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> Result<Option<tokio_postgres::Config>> {
        let Some(url) = &self.listen_url else {
            return Ok(self.prepared_statements.then(|| pg_config.clone()));
        };
        let mut direct = parse_url("listen_url", url)?;
        direct.connect_timeout(self.connect_timeout);
        Ok(Some(direct))
    }
}

/// A connection URL (or key-value string) of the setting `field`.
pub(super) fn parse_url(field: &'static str, url: &str) -> Result<tokio_postgres::Config> {
    tokio_postgres::Config::from_str(url).map_err(|e| {
        Error::invalid(
            field,
            format!("not a valid PostgreSQL connection URL ({e})"),
        )
    })
}

/// Checks a schema name: it is spliced into SQL as an identifier, so only
/// plain names are accepted, and the server's own schemas
/// (`information_schema`, `pg_catalog` and the other `pg_` ones) are
/// refused.
pub fn validate_schema(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let plain = matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'));
    if !plain || schema.len() > MAX_SCHEMA_LEN {
        return Err(Error::invalid(
            "schema",
            format!(
                "{schema:?} is not a plain schema name (lower-case letters, digits and \
                 underscores, not starting with a digit, at most {MAX_SCHEMA_LEN} long)"
            ),
        ));
    }
    if schema == "information_schema" || schema.starts_with("pg_") {
        return Err(Error::invalid(
            "schema",
            format!("{schema:?} is one of the server's own schemas; choose a schema of your own (the default is taskq)"),
        ));
    }
    Ok(())
}

/// Takes taskq's own `schema=NAME` query parameter out of a PostgreSQL
/// URL, returning the URL the driver understands and the schema.
pub fn split_schema(url: &str) -> (String, Option<String>) {
    take_param(url, "schema")
}

/// Takes the query parameter `name` out of `url`: the URL without it, and
/// its value (the last, if it appears more than once).
pub(crate) fn take_param(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let prefix = format!("{name}=");
    let mut value = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix(prefix.as_str()) {
            Some(found) => {
                value = Some(found.to_string());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, value)
}

/// A validated schema name as a quoted identifier.
pub(super) fn quote(schema: &str) -> String {
    format!("\"{schema}\"")
}

/// The `NOTIFY` channel of a schema's queue.
pub(super) fn channel(schema: &str) -> String {
    format!("taskq_{schema}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_taken_out_of_the_url() {
        assert_eq!(
            split_schema("postgres://h/db"),
            ("postgres://h/db".into(), None)
        );
        assert_eq!(
            split_schema("postgres://h/db?schema=jobs"),
            ("postgres://h/db".into(), Some("jobs".into()))
        );
        assert_eq!(
            split_schema("postgres://h/db?sslmode=disable&schema=jobs&connect_timeout=5"),
            (
                "postgres://h/db?sslmode=disable&connect_timeout=5".into(),
                Some("jobs".into())
            )
        );
    }

    #[test]
    fn only_plain_schema_names_pass() {
        for good in ["taskq", "_x", "jobs_2", &"a".repeat(MAX_SCHEMA_LEN)] {
            assert!(validate_schema(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_SCHEMA_LEN + 1);
        for bad in [
            "",
            "1abc",
            "Jobs",
            "a-b",
            "a\"; DROP TABLE x; --",
            "a b",
            &long,
            "information_schema",
            "pg_catalog",
            "pg_toast",
            "pg_temp_1",
        ] {
            assert!(
                matches!(
                    validate_schema(bad),
                    Err(Error::InvalidInput {
                        field: "schema",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}
