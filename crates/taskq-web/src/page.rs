//! What every page shares: the frame around it (links, database name,
//! CSRF token), error pages, and how values are written.

use std::time::{Duration, SystemTime};

use askama::Template;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::security::Csrf;
use crate::App;

/// The frame of a page, taken from the request.
#[derive(Clone, Debug)]
pub(crate) struct Chrome {
    /// The path the dashboard is nested under, `""` at the root.
    pub(crate) base: String,
    /// The database's name, without a password.
    pub(crate) database: String,
    pub(crate) read_only: bool,
    /// The CSRF token every form sends back.
    pub(crate) csrf: String,
}

impl FromRequestParts<App> for Chrome {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let inner = parts.uri.path().to_owned();
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| inner.clone(), |uri| uri.path().to_owned());
        let base = original
            .strip_suffix(inner.as_str())
            .unwrap_or_else(|| original.trim_end_matches('/'))
            .trim_end_matches('/')
            .to_owned();
        let csrf = parts
            .extensions
            .get::<Csrf>()
            .map(|csrf| csrf.0.clone())
            .unwrap_or_default();
        Ok(Chrome {
            base,
            database: app.config.database.clone().unwrap_or_default(),
            read_only: app.config.read_only,
            csrf,
        })
    }
}

/// A page that could not be shown, as a page saying why.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) chrome: Option<Chrome>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    title: &'a str,
    message: &'a str,
}

impl Failure {
    /// A failure with `status` and a message for the reader.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
            chrome: None,
        }
    }

    /// A 400: the request asked for something that makes no sense.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Failure::new(StatusCode::BAD_REQUEST, message)
    }

    /// With the frame of the page it failed on.
    pub(crate) fn on(mut self, chrome: &Chrome) -> Self {
        self.chrome = Some(chrome.clone());
        self
    }
}

impl From<taskq::Error> for Failure {
    fn from(error: taskq::Error) -> Self {
        use taskq::Error as E;
        let status = match &error {
            E::InvalidInput { .. } => StatusCode::BAD_REQUEST,
            E::TaskNotFound { .. } | E::ScheduleNotFound { .. } => StatusCode::NOT_FOUND,
            E::WrongState { .. } | E::Duplicate { .. } | E::LeaseLost { .. } => {
                StatusCode::CONFLICT
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The reader gets no internals; the log gets the error (taskq's
            // errors never carry a password).
            tracing::error!(%error, "a dashboard request failed");
            return Failure::new(
                status,
                "The database could not be used just now; the server's log says why. Try again.",
            );
        }
        Failure::new(status, error.to_string())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        // A failure before any handler (the guards') has no frame of its
        // own: a plain one, without the database's name.
        let chrome = self.chrome.unwrap_or(Chrome {
            base: String::new(),
            database: String::new(),
            read_only: false,
            csrf: String::new(),
        });
        let title = self.status.canonical_reason().unwrap_or("Error");
        let page = ErrorPage {
            chrome,
            title,
            message: &self.message,
        };
        match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(_) => (self.status, self.message).into_response(),
        }
    }
}

/// What a handler returns: a page, or a page saying why not.
pub(crate) type PageResult = Result<Response, Failure>;

/// Renders a template as a 200 page.
pub(crate) fn html(page: &impl Template, chrome: &Chrome) -> PageResult {
    let body = page.render().map_err(|error| {
        tracing::error!(%error, "a dashboard page could not be rendered");
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The page could not be rendered.",
        )
        .on(chrome)
    })?;
    Ok(Html(body).into_response())
}

/// The page for a path the dashboard does not have.
pub(crate) async fn not_found(chrome: Chrome) -> Failure {
    Failure::new(StatusCode::NOT_FOUND, "There is no such page.").on(&chrome)
}

/// A time as UTC, to the second: `2026-12-02 05:10:51 UTC`.
pub(crate) fn time(at: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    format!("{} UTC", text.trim_end_matches('Z').replacen('T', " ", 1))
}

/// A length of time in its two largest units: `3h 12m`, `45s`, `120ms`.
pub(crate) fn span(length: Duration) -> String {
    let seconds = length.as_secs();
    match seconds {
        0 => format!("{}ms", length.as_millis()),
        1..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m {}s", seconds / 60, seconds % 60),
        3600..=86_399 => format!("{}h {}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d {}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

/// How long ago `at` was, or how long until it comes: `5m 2s ago`,
/// `in 3s`.
pub(crate) fn relative(at: SystemTime) -> String {
    match SystemTime::now().duration_since(at) {
        Ok(ago) => format!("{} ago", span(ago)),
        Err(ahead) => format!("in {}", span(ahead.duration())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_lengths_read_plainly() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_652_251);
        assert_eq!(time(at), "2025-12-02 05:10:51 UTC");
        assert_eq!(span(Duration::from_millis(120)), "120ms");
        assert_eq!(span(Duration::from_secs(45)), "45s");
        assert_eq!(span(Duration::from_secs(3 * 3600 + 12 * 60 + 5)), "3h 12m");
        assert_eq!(span(Duration::from_secs(2 * 86_400 + 7200)), "2d 2h");
        assert!(relative(SystemTime::now() + Duration::from_secs(30)).starts_with("in "));
    }
}
