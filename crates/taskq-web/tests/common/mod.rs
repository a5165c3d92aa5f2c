//! What the dashboard's tests share: a seeded queue on a real database,
//! and requests sent through the router as a browser would send them.

#![allow(dead_code, reason = "each test binary uses what it needs")]

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use taskq::{NewTask, Queue, TaskId};
use tower::ServiceExt;

/// A response, read whole.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The CSRF token the response set, if it set one.
    pub fn csrf(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("taskq_csrf="))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
    }

    /// Asserts the status, showing the body when it differs.
    pub fn expect(self, status: StatusCode) -> Self {
        assert_eq!(self.status, status, "{}", self.body);
        self
    }
}

/// Sends `request` through `router`.
pub async fn send(router: &Router, request: Request<Body>) -> Page {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A GET of `path`, as from `localhost`.
pub async fn get(router: &Router, path: &str) -> Page {
    let request = Request::get(path)
        .header(header::HOST, "localhost:7380")
        .body(Body::empty())
        .unwrap();
    send(router, request).await
}

/// A browser session: a CSRF token from a first page, sent back with
/// every form.
pub struct Browser {
    pub router: Router,
    pub csrf: String,
}

impl Browser {
    /// Opens the overview and keeps the CSRF token it sets.
    pub async fn open(router: Router) -> Self {
        let page = get(&router, "/").await.expect(StatusCode::OK);
        let csrf = page.csrf().expect("the first page sets a CSRF cookie");
        Browser { router, csrf }
    }

    /// A GET that sends the cookie back.
    pub async fn get(&self, path: &str) -> Page {
        let request = Request::get(path)
            .header(header::HOST, "localhost:7380")
            .header(header::COOKIE, format!("taskq_csrf={}", self.csrf))
            .body(Body::empty())
            .unwrap();
        send(&self.router, request).await
    }

    /// A form POST of `fields` with the session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, Some(&self.csrf), None).await
    }

    /// A form POST with exactly `fields`, the cookie `cookie` and an
    /// `Origin` header.
    pub async fn post_raw(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Page {
        let mut request = Request::post(path)
            .header(header::HOST, "localhost:7380")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("taskq_csrf={cookie}"));
        }
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        let body = serde_urlencoded::to_string(fields).unwrap();
        send(&self.router, request.body(Body::from(body)).unwrap()).await
    }
}

/// What [`seed`] made.
pub struct Seeded {
    /// Failed for good, with a timeout error, after two tries.
    pub failed: TaskId,
    /// Failed for good with another error.
    pub failed_other: TaskId,
    /// Queued.
    pub queued: Vec<TaskId>,
    /// Completed with follow-ups; retained as succeeded.
    pub parent: TaskId,
    /// The follow-ups of `parent`.
    pub children: Vec<TaskId>,
}

/// Tasks in every state the pages show: `email` with failures and
/// queued tasks, `report` paused, an `order` that made follow-ups.
pub async fn seed(queue: &Queue) -> Seeded {
    let failed = queue
        .enqueue_task(
            NewTask::json("email", &serde_json::json!({"to": "ada@example.com"}))
                .unwrap()
                .max_tries(2),
        )
        .await
        .unwrap()
        .id;
    let failed_other = queue.enqueue("email", &"b").await.unwrap();
    let lease = queue.claim("email").await.unwrap().unwrap();
    lease.fail("SMTP timeout after 30s").await.unwrap();
    let lease = queue.claim("email").await.unwrap().unwrap();
    lease
        .fail_permanently("mailbox <b> does not exist")
        .await
        .unwrap();
    // The first task's second try: it is ready again after its backoff.
    let lease = loop {
        if let Some(lease) = queue.claim("email").await.unwrap() {
            break lease;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(lease.id(), failed);
    lease.fail("SMTP timeout after 30s, again").await.unwrap();
    let mut queued = Vec::new();
    for i in 0..3 {
        queued.push(queue.enqueue("email", &i).await.unwrap());
    }
    queue.enqueue("report", &"weekly").await.unwrap();
    queue.pause("report").await.unwrap();
    let parent = queue.enqueue("order", &7).await.unwrap();
    let lease = queue.claim("order").await.unwrap().unwrap();
    let made = lease
        .complete_with(vec![
            NewTask::json("ship", &7).unwrap(),
            NewTask::json("invoice", &7).unwrap(),
        ])
        .await
        .unwrap();
    Seeded {
        failed,
        failed_other,
        queued,
        parent,
        children: made.iter().map(|e| e.id).collect(),
    }
}

/// Settings under which a failed try is retried after 10 ms and
/// completed tasks are kept.
pub fn quick_config() -> taskq::QueueConfig {
    taskq::QueueConfig {
        backoff: taskq::Backoff {
            initial: std::time::Duration::from_millis(10),
            max: std::time::Duration::from_millis(10),
            jitter: 0.0,
        },
        retain_completed: true,
        ..taskq::QueueConfig::default()
    }
}

/// A queue on a new SQLite file in `dir`.
pub async fn sqlite_queue(dir: &tempfile::TempDir) -> Queue {
    let options = taskq::ConnectOptions {
        config: quick_config(),
        ..taskq::ConnectOptions::default()
    };
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    Queue::connect_with(&url, options).await.unwrap()
}
