//! Which backend a database URL names, and how a URL is shown with its
//! password hidden.

#[cfg(feature = "postgres")]
use super::postgres;
#[cfg(feature = "sqlite")]
use super::sqlite;
use super::Backend;
use crate::error::{Error, Result};

/// A database URL as it may be shown or logged: the password, in the
/// user part or as a `password` parameter, replaced by `***`.
///
/// ```
/// assert_eq!(
///     taskq::redact_url("postgres://app:s3cret@db:5432/jobs?password=x&schema=q"),
///     "postgres://app:***@db:5432/jobs?password=***&schema=q"
/// );
/// assert_eq!(taskq::redact_url("sqlite://jobs.db"), "sqlite://jobs.db");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => param.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Opens the backend that a database URL names (see
/// [`Queue::connect`](crate::Queue::connect)): with `create`, creating and
/// migrating what is missing; without, creating and changing nothing.
pub(crate) async fn connect(url: &str, create: bool) -> Result<Box<dyn Backend>> {
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (url, schema) = postgres::split_schema(url);
        let (url, prepared) = postgres::take_param(&url, "prepared_statements");
        let (url, vacuum_after) = postgres::take_param(&url, "vacuum_after");
        let (url, listen_url) = postgres::take_param(&url, "listen_url");
        let mut config = postgres::PostgresConfig {
            migrate: create,
            ..postgres::PostgresConfig::default()
        };
        if let Some(schema) = schema {
            config.schema = schema;
        }
        match prepared.as_deref() {
            None | Some("true") => {}
            Some("false") => config.prepared_statements = false,
            Some(other) => {
                return Err(Error::invalid(
                    "url",
                    format!("prepared_statements={other:?}: write true or false"),
                ))
            }
        }
        if let Some(encoded) = listen_url {
            let decoded = percent_encoding::percent_decode_str(&encoded)
                .decode_utf8()
                .map_err(|_| {
                    Error::invalid("listen_url", "not percent-encoded UTF-8 (encode it like postgres%3A%2F%2Fapp%40db%2Fapp)")
                })?;
            config.listen_url = Some(decoded.into_owned());
        }
        if let Some(n) = vacuum_after {
            let n = n.parse::<u64>().map_err(|_| {
                Error::invalid(
                    "url",
                    format!("vacuum_after={n:?}: write a number of dead rows, 100 or more"),
                )
            })?;
            config.vacuum_after = Some(n);
        }
        return Ok(Box::new(
            postgres::PostgresBackend::connect(&url, config).await?,
        ));
    }
    #[cfg(feature = "sqlite")]
    if let Some(path) = sqlite_path(url) {
        let config = sqlite::SqliteConfig {
            migrate: create,
            create_file: create,
            ..sqlite::SqliteConfig::default()
        };
        return Ok(Box::new(sqlite::SqliteBackend::open(path, config).await?));
    }
    let _ = create;
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    let supported = match (cfg!(feature = "sqlite"), cfg!(feature = "postgres")) {
        (true, true) => "sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB",
        (true, false) => "sqlite://PATH; postgres:// needs the feature \"postgres\"",
        (false, true) => {
            "postgres://USER:PASSWORD@HOST:PORT/DB; sqlite:// needs the feature \"sqlite\""
        }
        (false, false) => "no backend: enable the feature \"sqlite\" or \"postgres\"",
    };
    Err(Error::InvalidInput {
        field: "url",
        reason: format!(
            "the scheme {scheme:?} is not supported by this build of taskq (use {supported})"
        ),
    })
}

/// Opens (creating and migrating if needed) the SQLite file at `path`,
/// with default settings.
#[cfg(feature = "sqlite")]
pub(crate) async fn open_sqlite(path: &std::path::Path) -> Result<Box<dyn Backend>> {
    let backend = sqlite::SqliteBackend::open(path, sqlite::SqliteConfig::default()).await?;
    Ok(Box::new(backend))
}

/// The file path of a SQLite URL or plain path; `None` for other schemes.
#[cfg(feature = "sqlite")]
fn sqlite_path(url: &str) -> Option<&str> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        return Some(path);
    }
    if let Some(path) = url.strip_prefix("sqlite:") {
        return Some(path);
    }
    (!url.contains("://")).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "sqlite")]
    #[test]
    fn redacted_urls_keep_everything_but_the_password() {
        for (url, shown) in [
            ("postgres://a:b@h/d", "postgres://a:***@h/d"),
            ("postgresql://a:p@ss:w@rd@h:1/d", "postgresql://a:***@h:1/d"),
            (
                "postgres://a@h/d?sslmode=require",
                "postgres://a@h/d?sslmode=require",
            ),
            (
                "postgres://h/d?user=a&PASSWORD=b",
                "postgres://h/d?user=a&PASSWORD=***",
            ),
            ("postgres://a:b@h", "postgres://a:***@h"),
            ("sqlite:///var/jobs.db", "sqlite:///var/jobs.db"),
            ("jobs.db", "jobs.db"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn sqlite_urls_name_a_path() {
        assert_eq!(sqlite_path("sqlite:///tmp/a.db"), Some("/tmp/a.db"));
        assert_eq!(sqlite_path("sqlite://a.db"), Some("a.db"));
        assert_eq!(sqlite_path("sqlite:a.db"), Some("a.db"));
        assert_eq!(sqlite_path("jobs.db"), Some("jobs.db"));
        assert_eq!(sqlite_path("postgres://u:p@h/db"), None);
    }
}
