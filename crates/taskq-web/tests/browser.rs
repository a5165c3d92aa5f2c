//! The dashboard in a real browser: headless Chromium, driven through
//! ChromeDriver (Debian's `chromium` and `chromium-driver`, which
//! `.ci/run` installs), opens the overview, a task list and a failed
//! task's page of a seeded queue, retries the task with its button, and
//! the test checks that the database changed. A screenshot of each page
//! goes to `target/dashboard-screenshots/` (or `$TASKQ_SCREENSHOTS`).

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use taskq::State;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// ChromeDriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_driver() -> Driver {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(program).exists(),
            "the browser test needs {program}: install Chromium and its driver \
             (on Debian: apt-get install chromium chromium-driver), as .ci/run does"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "ChromeDriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, port }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let options = serde_json::json!({
        "binary": CHROMIUM,
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
            format!("--user-data-dir={}", profile.display()),
        ],
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

fn screenshots() -> PathBuf {
    let dir = std::env::var_os("TASKQ_SCREENSHOTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn snap(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// The page's text, once `css` is on it.
async fn shown(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not show: {e}"));
    client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_a_failed_task_and_retries_it_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let queue = common::sqlite_queue(&dir).await;
    let seeded = common::seed(&queue).await;
    queue
        .record_throughput(
            (0..60)
                .map(|minute| taskq::Throughput {
                    minute: std::time::SystemTime::now() - Duration::from_secs(60 * minute),
                    action: "email".into(),
                    completed: 20 + (minute * 7919) % 40,
                    retried: minute % 3,
                    failed: u64::from(minute % 11 == 0),
                })
                .collect(),
        )
        .await
        .unwrap();
    let dashboard = taskq_web::router(
        queue.clone(),
        taskq_web::DashboardConfig {
            database: Some("sqlite://jobs.db".into()),
            ..taskq_web::DashboardConfig::default()
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let server = tokio::spawn(async move { axum::serve(listener, dashboard).await });

    let driver = start_driver();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path()).await;

    client.goto(&format!("{base}/")).await.unwrap();
    let overview = shown(&client, "table.actions").await;
    assert!(
        overview.contains("email") && overview.contains("report"),
        "{overview}"
    );
    snap(&client, "overview").await;

    // The failed count of `email` leads to its failed tasks.
    client
        .find(Locator::Css("td.bad a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let list = shown(&client, "table.tasks").await;
    assert!(list.contains("SMTP timeout"), "{list}");
    snap(&client, "tasks").await;

    // Two clicks: the task, then its Retry button.
    let link = format!("a[href='/tasks/{}']", seeded.failed);
    client
        .find(Locator::Css(&link))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let detail = shown(&client, "table.attempts").await;
    assert!(detail.contains("SMTP timeout after 30s, again"), "{detail}");
    snap(&client, "task").await;
    client
        .find(Locator::Css("#retry"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let done = shown(&client, "ul.done").await;
    assert!(done.contains("queued again"), "{done}");
    snap(&client, "retried").await;
    let task = queue.get(seeded.failed).await.unwrap().unwrap();
    assert_eq!((task.state, task.tries), (State::Queued, 0));

    client.close().await.unwrap();
    server.abort();
}
