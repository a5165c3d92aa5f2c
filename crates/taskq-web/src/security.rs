//! What guards every request: the `Host` check, the token, read-only
//! mode, CSRF tokens on every change, and the security headers.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, HOST, ORIGIN, REFERRER_POLICY,
    SET_COOKIE, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;

use crate::page::Failure;
use crate::App;

/// The name of the cookie that holds the CSRF token.
const CSRF_COOKIE: &str = "taskq_csrf";

/// The largest form body a change may send.
const MAX_FORM: usize = 64 * 1024;

/// The policy of every response: scripts and styles only from the
/// dashboard's own files (no inline script), forms only to itself, never
/// in a frame.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                      connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The CSRF token of this browser, for the forms of a page.
#[derive(Clone, Debug)]
pub(crate) struct Csrf(pub(crate) String);

/// `routes` behind the guards.
pub(crate) fn wrap(routes: Router, app: App) -> Router {
    routes
        .layer(from_fn_with_state(app, guard))
        .layer(from_fn(headers))
}

/// Adds the security headers to every response.
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let set = response.headers_mut();
    set.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    set.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    set.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    set.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    set.entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Checks the host, the token and, for changes, read-only mode, the
/// origin and the CSRF token; gives the browser a CSRF token when it has
/// none.
async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    let config = &app.config;
    if let Some(allowed) = &config.allowed_hosts {
        if !host_allowed(request.headers(), allowed) {
            return Failure::new(
                StatusCode::MISDIRECTED_REQUEST,
                "This dashboard is not served under that host name.",
            )
            .into_response();
        }
    }
    if let Some(token) = &config.token {
        if !authorized(request.headers(), token) {
            let mut refused = Failure::new(
                StatusCode::UNAUTHORIZED,
                "This dashboard needs its token: as the password your browser asks for, or as a bearer token.",
            )
            .into_response();
            refused.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"taskq dashboard\", charset=\"UTF-8\""),
            );
            return refused;
        }
    }
    let held = cookie(request.headers(), CSRF_COOKIE).filter(|token| well_formed(token));
    let request = if request.method() == Method::GET || request.method() == Method::HEAD {
        request
    } else {
        match check_change(request, config.read_only, held.as_deref()).await {
            Ok(request) => request,
            Err(failure) => return failure.into_response(),
        }
    };
    let (token, fresh) = match held {
        Some(token) => (token, false),
        None => (new_token(), true),
    };
    let mut request = request;
    request.extensions_mut().insert(Csrf(token.clone()));
    let mut response = next.run(request).await;
    if fresh {
        let cookie = format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}

/// Lets a change (a POST) through only outside read-only mode, from this
/// dashboard's own pages (the `Origin`, when sent, names the host asked
/// for) and with the form's CSRF token equal to the cookie's.
async fn check_change(
    request: Request,
    read_only: bool,
    held: Option<&str>,
) -> Result<Request, Failure> {
    if read_only {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "This dashboard is read-only: it changes nothing.",
        ));
    }
    if request.method() != Method::POST {
        return Err(Failure::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Changes are sent as forms (POST).",
        ));
    }
    let headers = request.headers();
    if let Some(origin) = headers.get(ORIGIN) {
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest);
        if host.is_none() || origin_host != host {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                "The change was sent from another site's page, and refused.",
            ));
        }
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| Failure::bad_request("The form is too large."))?;
    let sent = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(name, _)| name == "csrf"))
        .map(|(_, value)| value);
    match (held, sent) {
        (Some(held), Some(sent)) if same(held.as_bytes(), sent.as_bytes()) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(Failure::new(
            StatusCode::FORBIDDEN,
            "The form's security token is missing or out of date. Go back, reload the page and try again.",
        )),
    }
}

/// Whether the `Host` header names one of `allowed` (its port aside).
fn host_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        // An IPv6 address without a port ends in `]`.
        Some((name, port)) if !port.contains(']') => name,
        _ => host,
    };
    allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// Whether the request carries `token`, as a bearer token or as the
/// password of basic authentication.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if let Some(bearer) = value.strip_prefix("Bearer ") {
        return same(bearer.trim().as_bytes(), token.as_bytes());
    }
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(_, password)| password.to_owned())
        })
        .is_some_and(|password| same(password.as_bytes(), token.as_bytes()))
}

/// The value of the cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Whether `token` looks like one of [`new_token`]'s.
fn well_formed(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A new random CSRF token: 16 bytes from the operating system, in hex.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness from the system: no token a form could match.
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets in time that depends only on their lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: axum::http::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn hosts_are_compared_without_their_port() {
        let allowed = ["localhost".to_owned(), "[::1]".to_owned()];
        assert!(host_allowed(&with(HOST, "localhost:7380"), &allowed));
        assert!(host_allowed(&with(HOST, "LOCALHOST"), &allowed));
        assert!(host_allowed(&with(HOST, "[::1]:7380"), &allowed));
        assert!(host_allowed(&with(HOST, "[::1]"), &allowed));
        assert!(!host_allowed(&with(HOST, "evil.example:7380"), &allowed));
        assert!(!host_allowed(&HeaderMap::new(), &allowed));
    }

    #[test]
    fn the_token_is_a_bearer_or_a_basic_password() {
        assert!(authorized(&with(AUTHORIZATION, "Bearer s3cret"), "s3cret"));
        assert!(!authorized(&with(AUTHORIZATION, "Bearer s3cre"), "s3cret"));
        // "ops:s3cret"
        assert!(authorized(
            &with(AUTHORIZATION, "Basic b3BzOnMzY3JldA=="),
            "s3cret"
        ));
        assert!(!authorized(&with(AUTHORIZATION, "Basic !!"), "s3cret"));
        assert!(!authorized(&HeaderMap::new(), "s3cret"));
    }

    #[test]
    fn csrf_tokens_are_random_and_read_back_from_the_cookie() {
        let (a, b) = (new_token(), new_token());
        assert!(well_formed(&a) && a != b);
        let headers = with(COOKIE, &format!("theme=dark; {CSRF_COOKIE}={a}"));
        assert_eq!(cookie(&headers, CSRF_COOKIE), Some(a));
        assert!(!well_formed("<script>"));
    }
}
