//! Every page and action of the dashboard, through its router, on a real
//! SQLite file: what each shows, what each changes in the database, and
//! what the guards refuse.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{get, seed, send, sqlite_queue, Browser};
use taskq::State;
use taskq_web::{router, DashboardConfig};

async fn dashboard(
    config: DashboardConfig,
) -> (
    tempfile::TempDir,
    taskq::Queue,
    common::Seeded,
    axum::Router,
) {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(&dir).await;
    let seeded = seed(&queue).await;
    let router = router(queue.clone(), config).unwrap();
    (dir, queue, seeded, router)
}

#[tokio::test]
async fn the_overview_shows_each_action_its_counts_pause_and_charts() {
    let (_dir, queue, _seeded, router) = dashboard(DashboardConfig::default()).await;
    let nightly = taskq::Schedule::cron("nightly", "report", "0 3 * * *").in_zone("Europe/Berlin");
    queue.schedules().upsert(nightly).await.unwrap();
    queue.schedules().pause("nightly").await.unwrap();
    let limits = taskq::Limits::new()
        .concurrency(3)
        .rate(taskq::Rate::per_second(20))
        .per_key(1);
    queue.set_limits("email", limits).await.unwrap();
    queue
        .record_throughput(vec![taskq::Throughput {
            minute: std::time::SystemTime::now(),
            action: "email".into(),
            completed: 40,
            retried: 3,
            failed: 2,
        }])
        .await
        .unwrap();
    let page = get(&router, "/").await.expect(StatusCode::OK);
    for text in [
        "email",
        "report",
        "order",
        "ship",
        "invoice",
        "completed 40",
        "failed for good 2",
        "<svg",
        "Pause",
        "Resume",
        "Schedules",
        "nightly",
        "0 3 * * * (Europe/Berlin)",
        "Limits",
        "0 of 3",
        "20 per 1s",
    ] {
        assert!(page.body.contains(text), "{text} missing:\n{}", page.body);
    }
    assert!(page.body.contains("state=failed\">2</a>"), "{}", page.body);
    assert!(page.body.contains("class=\"paused\""));
    assert_eq!(
        page.headers.get(header::CONTENT_TYPE).unwrap(),
        "text/html; charset=utf-8"
    );
}

#[tokio::test]
async fn the_task_list_filters_by_action_state_and_error_and_pages_by_id() {
    let (_dir, _queue, seeded, router) = dashboard(DashboardConfig::default()).await;
    let page = get(&router, "/tasks?state=failed&error=TIMEOUT")
        .await
        .expect(StatusCode::OK);
    assert!(page.body.contains(&format!("/tasks/{}\"", seeded.failed)));
    assert!(!page
        .body
        .contains(&format!("/tasks/{}\"", seeded.failed_other)));
    assert!(page.body.contains("Retry all matching"));

    let first = get(
        &router,
        "/tasks?action=email&state=queued&order=oldest&limit=2",
    )
    .await;
    let first = first.expect(StatusCode::OK);
    assert!(first
        .body
        .contains(&format!("/tasks/{}\"", seeded.queued[0])));
    assert!(!first
        .body
        .contains(&format!("/tasks/{}\"", seeded.queued[2])));
    let next = format!("after={}", seeded.queued[1]);
    assert!(
        first.body.contains(&next),
        "a next-page link:\n{}",
        first.body
    );
    let second = get(
        &router,
        &format!("/tasks?action=email&state=queued&order=oldest&limit=2&{next}"),
    )
    .await;
    let second = second.expect(StatusCode::OK);
    assert!(second
        .body
        .contains(&format!("/tasks/{}\"", seeded.queued[2])));
    assert!(!second.body.contains("Next page"));

    let newest = get(&router, "/tasks").await.expect(StatusCode::OK);
    let at = |id: taskq::TaskId| newest.body.find(&format!("/tasks/{id}\"")).unwrap();
    assert!(
        at(seeded.children[1]) < at(seeded.failed),
        "newest first by default"
    );
    let children = get(&router, &format!("/tasks?parent={}", seeded.parent)).await;
    assert!(children
        .body
        .contains(&format!("/tasks/{}\"", seeded.children[0])));
    assert!(!children
        .body
        .contains(&format!("/tasks/{}\"", seeded.failed)));
}

#[tokio::test]
async fn a_task_shows_its_payload_options_attempts_parent_and_follow_ups() {
    let (_dir, queue, seeded, router) = dashboard(DashboardConfig::default()).await;
    let page = get(&router, &format!("/tasks/{}", seeded.failed))
        .await
        .expect(StatusCode::OK);
    for text in [
        "&#34;to&#34;: &#34;ada@example.com&#34;",
        "JSON",
        "SMTP timeout after 30s",
        "SMTP timeout after 30s, again",
        "2 of 2",
        "Retry",
        "Delete…",
    ] {
        assert!(page.body.contains(text), "{text} missing:\n{}", page.body);
    }
    let parent = get(&router, &format!("/tasks/{}", seeded.parent))
        .await
        .expect(StatusCode::OK);
    for child in &seeded.children {
        assert!(parent.body.contains(&format!("/tasks/{child}\"")));
    }
    let child = get(&router, &format!("/tasks/{}", seeded.children[0])).await;
    assert!(child.body.contains(&format!("task {}</a>", seeded.parent)));
    assert!(
        child.body.contains("id=\"cancel\""),
        "a queued task can be cancelled"
    );
    assert!(
        !child.body.contains("<h2>Result</h2>"),
        "only a result is shown"
    );

    let done = queue.enqueue("thumbnail", &"cat.png").await.unwrap();
    let lease = queue.claim("thumbnail").await.unwrap().unwrap();
    let result = taskq::TaskResult::json(&serde_json::json!({"file": "small.png"})).unwrap();
    lease
        .complete_with_result(result, Vec::new())
        .await
        .unwrap();
    let page = get(&router, &format!("/tasks/{done}"))
        .await
        .expect(StatusCode::OK);
    assert!(
        page.body.contains("<h2>Result</h2>")
            && page.body.contains("&#34;file&#34;: &#34;small.png&#34;"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn text_from_tasks_is_escaped() {
    let (_dir, queue, _seeded, router) = dashboard(DashboardConfig::default()).await;
    let id = queue
        .enqueue("x<script>", &"<script>alert(1)</script>")
        .await
        .unwrap();
    let lease = queue.claim("x<script>").await.unwrap().unwrap();
    lease
        .fail_permanently("<img src=x onerror=alert(1)>")
        .await
        .unwrap();
    for path in ["/".to_owned(), "/tasks".to_owned(), format!("/tasks/{id}")] {
        let page = get(&router, &path).await.expect(StatusCode::OK);
        assert!(
            !page.body.contains("<script>alert") && !page.body.contains("<img src=x"),
            "{path}"
        );
        assert!(!page.body.contains("x<script>"), "{path}");
    }
}

#[tokio::test]
async fn bad_query_parameters_and_paths_get_a_400_page() {
    let (_dir, _queue, _seeded, router) = dashboard(DashboardConfig::default()).await;
    for path in [
        "/tasks?state=bogus",
        "/tasks?after=-1",
        "/tasks?after=99999999999999999999",
        "/tasks?limit=0",
        "/tasks?limit=many",
        "/tasks?order=sideways",
        "/tasks?parent=x",
        "/tasks?action=%07bell",
        "/tasks/abc",
        "/tasks/0",
        "/tasks/-4",
        "/purge?state=queued",
        "/purge?state=failed&older_than=soon",
        "/delete-matching?state=nope",
    ] {
        let page = get(&router, path).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            page.body
        );
        assert!(
            page.body.contains("<h1>Bad Request</h1>"),
            "{path}: {}",
            page.body
        );
    }
    let missing = get(&router, "/tasks/987654")
        .await
        .expect(StatusCode::NOT_FOUND);
    assert!(missing.body.contains("987654"));
    get(&router, "/no/such/page")
        .await
        .expect(StatusCode::NOT_FOUND);
    get(&router, "/assets/nothing.js")
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_failed_task_is_retried_through_its_page() {
    let (_dir, queue, seeded, router) = dashboard(DashboardConfig::default()).await;
    let browser = Browser::open(router).await;
    let page = browser
        .get(&format!("/tasks/{}", seeded.failed))
        .await
        .expect(StatusCode::OK);
    assert!(page
        .body
        .contains(&format!("name=\"csrf\" value=\"{}\"", browser.csrf)));
    let done = browser
        .post(&format!("/tasks/{}/retry", seeded.failed), &[])
        .await;
    let done = done.expect(StatusCode::OK);
    assert!(done.body.contains("is queued again"), "{}", done.body);
    let task = queue.get(seeded.failed).await.unwrap().unwrap();
    assert_eq!((task.state, task.tries), (State::Queued, 0));
    // Again: it is no longer failed, and the page says so.
    let again = browser
        .post(&format!("/tasks/{}/retry", seeded.failed), &[])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
}

#[tokio::test]
async fn cancel_and_delete_change_the_task_and_say_what_they_did() {
    let (_dir, queue, seeded, router) = dashboard(DashboardConfig::default()).await;
    let browser = Browser::open(router).await;
    let id = seeded.queued[0];
    let cancelled = browser
        .post(&format!("/tasks/{id}/cancel"), &[])
        .await
        .expect(StatusCode::OK);
    assert!(cancelled.body.contains("is cancelled"));
    assert_eq!(
        queue.get(id).await.unwrap().unwrap().state,
        State::Cancelled
    );
    let twice = browser
        .post(&format!("/tasks/{id}/cancel"), &[])
        .await
        .expect(StatusCode::OK);
    assert!(twice.body.contains("had already finished"));

    let confirm = browser
        .get(&format!("/tasks/{id}/delete"))
        .await
        .expect(StatusCode::OK);
    assert!(confirm.body.contains("method=\"post\"") && confirm.body.contains("Delete the task"));
    assert!(
        queue.get(id).await.unwrap().is_some(),
        "asking changes nothing"
    );
    let deleted = browser
        .post(&format!("/tasks/{id}/delete"), &[])
        .await
        .expect(StatusCode::OK);
    assert!(deleted.body.contains("is deleted"));
    assert!(queue.get(id).await.unwrap().is_none());
}

#[tokio::test]
async fn everything_a_filter_matches_is_retried_or_deleted() {
    let (_dir, queue, seeded, router) = dashboard(DashboardConfig::default()).await;
    let browser = Browser::open(router).await;
    let retried = browser
        .post(
            "/retry-matching",
            &[
                ("action", "email"),
                ("state", "failed"),
                ("error", "timeout"),
            ],
        )
        .await
        .expect(StatusCode::OK);
    assert!(
        retried.body.contains("1 task queued again"),
        "{}",
        retried.body
    );
    assert_eq!(
        queue.get(seeded.failed).await.unwrap().unwrap().state,
        State::Queued
    );
    assert_eq!(
        queue.get(seeded.failed_other).await.unwrap().unwrap().state,
        State::Failed
    );
    let not_failed = browser
        .post("/retry-matching", &[("state", "queued")])
        .await;
    assert_eq!(not_failed.status, StatusCode::BAD_REQUEST);

    let confirm = browser
        .get("/delete-matching?action=email&state=queued")
        .await
        .expect(StatusCode::OK);
    assert!(
        confirm
            .body
            .contains("every task with action email, state queued"),
        "{}",
        confirm.body
    );
    assert_eq!(queue.len("email").await.unwrap(), 4);
    let deleted = browser
        .post(
            "/delete-matching",
            &[("action", "email"), ("state", "queued")],
        )
        .await
        .expect(StatusCode::OK);
    assert!(deleted.body.contains("4 tasks deleted"), "{}", deleted.body);
    assert_eq!(queue.len("email").await.unwrap(), 0);
}

#[tokio::test]
async fn purge_asks_then_removes_finished_tasks() {
    let (_dir, queue, _seeded, router) = dashboard(DashboardConfig::default()).await;
    let browser = Browser::open(router).await;
    let confirm = browser
        .get("/purge?state=failed&older_than=0s")
        .await
        .expect(StatusCode::OK);
    assert!(confirm.body.contains("Purge failed tasks?"));
    let purged = browser
        .post("/purge", &[("state", "failed"), ("older_than", "0s")])
        .await
        .expect(StatusCode::OK);
    assert!(purged.body.contains("2 tasks deleted"), "{}", purged.body);
    let email = queue
        .stats()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.action == "email")
        .unwrap();
    assert_eq!(email.failed, 0);
}

#[tokio::test]
async fn actions_are_paused_and_resumed_from_the_overview() {
    let (_dir, queue, _seeded, router) = dashboard(DashboardConfig::default()).await;
    let browser = Browser::open(router).await;
    let paused = browser
        .post("/pause", &[("action", "email")])
        .await
        .expect(StatusCode::OK);
    assert!(paused.body.contains("email is paused"));
    assert_eq!(queue.paused().await.unwrap(), ["email", "report"]);
    let again = browser
        .post("/pause", &[("action", "email")])
        .await
        .expect(StatusCode::OK);
    assert!(again.body.contains("already paused"));
    let resumed = browser
        .post("/resume", &[("action", "report")])
        .await
        .expect(StatusCode::OK);
    assert!(resumed.body.contains("report is resumed"));
    assert_eq!(queue.paused().await.unwrap(), ["email"]);
    let bad = browser.post("/pause", &[("action", "")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn schedules_are_paused_resumed_and_run_from_the_overview() {
    let (_dir, queue, _seeded, router) = dashboard(DashboardConfig::default()).await;
    let beat = taskq::Schedule::every("beat", "beat", std::time::Duration::from_secs(3600));
    queue.schedules().upsert(beat).await.unwrap();
    let browser = Browser::open(router).await;
    let overview = browser.get("/").await.expect(StatusCode::OK);
    assert!(overview.body.contains("/schedules/pause") && overview.body.contains("Run now"));
    let paused = browser
        .post("/schedules/pause", &[("schedule", "beat")])
        .await
        .expect(StatusCode::OK);
    assert!(paused.body.contains("beat is paused"), "{}", paused.body);
    assert!(queue.schedules().get("beat").await.unwrap().unwrap().paused);
    let again = browser
        .post("/schedules/pause", &[("schedule", "beat")])
        .await
        .expect(StatusCode::OK);
    assert!(again.body.contains("already paused"));
    let ran = browser
        .post("/schedules/run-now", &[("schedule", "beat")])
        .await
        .expect(StatusCode::OK);
    assert!(ran.body.contains("is enqueued"), "{}", ran.body);
    assert_eq!(queue.len("beat").await.unwrap(), 1);
    let resumed = browser
        .post("/schedules/resume", &[("schedule", "beat")])
        .await
        .expect(StatusCode::OK);
    assert!(resumed.body.contains("beat is resumed"));
    assert!(!queue.schedules().get("beat").await.unwrap().unwrap().paused);
    let missing = browser
        .post("/schedules/pause", &[("schedule", "nope")])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let bad = browser.post("/schedules/run-now", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn changes_without_the_right_csrf_token_or_from_another_site_are_refused() {
    let (_dir, queue, seeded, router) = dashboard(DashboardConfig::default()).await;
    let browser = Browser::open(router).await;
    let path = format!("/tasks/{}/retry", seeded.failed);
    let token = browser.csrf.clone();
    let refused = [
        browser.post_raw(&path, &[], Some(&token), None).await,
        browser
            .post_raw(&path, &[("csrf", &token)], None, None)
            .await,
        browser
            .post_raw(
                &path,
                &[("csrf", "0123456789abcdef0123456789abcdef")],
                Some(&token),
                None,
            )
            .await,
        browser
            .post_raw(
                &path,
                &[("csrf", &token)],
                Some(&token),
                Some("http://evil.example"),
            )
            .await,
    ];
    for page in refused {
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    }
    assert_eq!(
        queue.get(seeded.failed).await.unwrap().unwrap().state,
        State::Failed
    );
    let same_site = browser
        .post_raw(
            &path,
            &[("csrf", &token)],
            Some(&token),
            Some("http://localhost:7380"),
        )
        .await;
    same_site.expect(StatusCode::OK);
}

#[tokio::test]
async fn a_read_only_dashboard_shows_no_buttons_and_refuses_changes() {
    let config = DashboardConfig {
        read_only: true,
        ..DashboardConfig::default()
    };
    let (_dir, queue, seeded, router) = dashboard(config).await;
    let browser = Browser::open(router).await;
    for path in [
        "/".to_owned(),
        "/tasks?state=failed".to_owned(),
        format!("/tasks/{}", seeded.failed),
    ] {
        let page = browser.get(&path).await.expect(StatusCode::OK);
        assert!(
            !page.body.contains("method=\"post\""),
            "{path}: {}",
            page.body
        );
        assert!(page.body.contains("read-only"));
    }
    let refused = browser
        .post(&format!("/tasks/{}/retry", seeded.failed), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        queue.get(seeded.failed).await.unwrap().unwrap().state,
        State::Failed
    );
}

#[tokio::test]
async fn requests_under_another_host_name_are_refused() {
    let config = DashboardConfig {
        allowed_hosts: Some(vec!["localhost".into(), "127.0.0.1".into()]),
        ..DashboardConfig::default()
    };
    let (_dir, _queue, _seeded, router) = dashboard(config).await;
    get(&router, "/").await.expect(StatusCode::OK);
    for host in [
        "evil.example",
        "evil.example:7380",
        "localhost.evil.example",
    ] {
        let request = Request::get("/")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap();
        let page = send(&router, request).await;
        assert_eq!(page.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
    }
    let no_host = send(&router, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(no_host.status, StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test]
async fn a_token_is_asked_for_when_one_is_set() {
    let config = DashboardConfig {
        token: Some("s3cret-token".into()),
        ..DashboardConfig::default()
    };
    let (_dir, _queue, _seeded, router) = dashboard(config).await;
    let refused = get(&router, "/").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused
        .headers
        .get(header::WWW_AUTHENTICATE)
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let metrics = get(&router, "/metrics").await;
    assert_eq!(
        metrics.status,
        StatusCode::UNAUTHORIZED,
        "metrics are behind the token too"
    );
    for auth in ["Bearer s3cret-token", "Basic b3BzOnMzY3JldC10b2tlbg=="] {
        let request = Request::get("/")
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap();
        send(&router, request).await.expect(StatusCode::OK);
    }
    assert!(
        router_error(DashboardConfig {
            token: Some(String::new()),
            ..DashboardConfig::default()
        })
        .await
    );
}

async fn router_error(config: DashboardConfig) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(&dir).await;
    router(queue, config).is_err()
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let (_dir, _queue, _seeded, router) = dashboard(DashboardConfig::default()).await;
    for path in [
        "/",
        "/tasks",
        "/tasks/x",
        "/metrics",
        "/assets/dashboard.js",
        "/nothing",
    ] {
        let page = get(&router, path).await;
        let policy = page
            .headers
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
            "{path}"
        );
        assert!(policy.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(
            page.headers.get(header::X_FRAME_OPTIONS).unwrap(),
            "DENY",
            "{path}"
        );
        assert_eq!(
            page.headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
            "nosniff"
        );
    }
    let page = get(&router, "/").await;
    assert!(!page.body.contains("<script>"), "no inline script");
    let cookie = page
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
}

#[tokio::test]
async fn the_database_is_named_without_its_password() {
    let config = DashboardConfig {
        database: Some(taskq::redact_url("postgres://app:hunter2@db.internal/jobs")),
        ..DashboardConfig::default()
    };
    let (_dir, _queue, seeded, router) = dashboard(config).await;
    for path in [
        "/".to_owned(),
        "/tasks".to_owned(),
        format!("/tasks/{}", seeded.failed),
        "/tasks/0".to_owned(),
    ] {
        let page = get(&router, &path).await;
        assert!(
            page.body.contains("postgres://app:***@db.internal/jobs"),
            "{path}"
        );
        assert!(!page.body.contains("hunter2"), "{path}");
    }
}

#[tokio::test]
async fn links_keep_the_path_the_dashboard_is_nested_under() {
    let (_dir, _queue, seeded, dashboard) = dashboard(DashboardConfig::default()).await;
    let app = axum::Router::new().nest("/admin/queue", dashboard);
    let page = get(&app, "/admin/queue/tasks").await.expect(StatusCode::OK);
    assert!(page
        .body
        .contains(&format!("href=\"/admin/queue/tasks/{}\"", seeded.failed)));
    assert!(page
        .body
        .contains("href=\"/admin/queue/assets/dashboard.css\""));
    let top = get(&app, "/admin/queue").await.expect(StatusCode::OK);
    assert!(
        top.body
            .contains("href=\"/admin/queue/tasks?action=email\""),
        "{}",
        top.body
    );
    let form = get(&app, &format!("/admin/queue/tasks/{}", seeded.failed)).await;
    assert!(form.body.contains(&format!(
        "action=\"/admin/queue/tasks/{}/retry\"",
        seeded.failed
    )));
}

#[tokio::test]
async fn metrics_give_the_queue_series_in_the_prometheus_format() {
    let (_dir, _queue, _seeded, router) = dashboard(DashboardConfig::default()).await;
    let page = get(&router, "/metrics").await.expect(StatusCode::OK);
    assert!(page
        .headers
        .get(header::CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    for line in [
        "# TYPE taskq_tasks gauge",
        "taskq_tasks{action=\"email\",state=\"failed\"} 2",
        "taskq_tasks{action=\"email\",state=\"queued\"} 3",
        "taskq_tasks{action=\"order\",state=\"succeeded\"} 1",
        "taskq_action_paused{action=\"report\"} 1",
        "taskq_action_paused{action=\"email\"} 0",
        "# TYPE taskq_oldest_ready_age_seconds gauge",
        "taskq_oldest_ready_age_seconds{action=\"ship\"}",
    ] {
        assert!(page.body.contains(line), "{line} missing:\n{}", page.body);
    }
}
