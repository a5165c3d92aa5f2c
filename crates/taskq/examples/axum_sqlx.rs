//! An axum service whose handler writes the application's row and
//! enqueues its task in one sqlx transaction, and a taskq worker in the
//! same process that runs the task:
//!
//!     cargo run -p taskq --example axum_sqlx --features sqlx -- 127.0.0.1:3000 orders.db
//!     curl -X POST localhost:3000/orders -H 'content-type: application/json' -d '{"item":"book"}'
//!     curl localhost:3000/orders/1
//!
//! `POST /orders` inserts the order and enqueues its "ship" task together:
//! both commit, or neither does. The worker ships the order a moment
//! later; `GET /orders/{id}` shows it shipped. On PostgreSQL the same
//! handler takes a `PgPool` and calls
//! `taskq::postgres::sqlx::enqueue_in(&mut tx, "taskq", &task)`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use taskq::sqlite::sqlx as taskq_sqlx;
use taskq::worker::{TaskContext, Worker, WorkerConfig};
use taskq::{NewTask, Queue};

#[derive(Deserialize)]
struct NewOrder {
    item: String,
}

/// Inserts the order and enqueues its shipping in one transaction.
async fn create(
    State(pool): State<SqlitePool>,
    Json(order): Json<NewOrder>,
) -> Result<Response, AppError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id: i64 = sqlx::query_scalar("INSERT INTO orders (item) VALUES (?1) RETURNING id")
        .bind(&order.item)
        .fetch_one(&mut *tx)
        .await?;
    let task = taskq_sqlx::enqueue_in(&mut tx, &NewTask::json("ship", &id)?).await?;
    tx.commit().await?;
    let body = json!({ "order": id, "task": task.id.0 });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// An order and whether it has shipped.
async fn show(
    State(pool): State<SqlitePool>,
    UrlPath(id): UrlPath<i64>,
) -> Result<Response, AppError> {
    let row: Option<(String, bool)> =
        sqlx::query_as("SELECT item, shipped FROM orders WHERE id = ?1")
            .bind(id)
            .fetch_optional(&pool)
            .await?;
    Ok(match row {
        Some((item, shipped)) => {
            Json(json!({ "order": id, "item": item, "shipped": shipped })).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

/// The worker's handler: ships order `id` (here, marks it shipped; safe
/// to run twice, as every handler should be).
async fn ship(pool: SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orders SET shipped = 1 WHERE id = ?1")
        .bind(id)
        .execute(&pool)
        .await?;
    Ok(())
}

/// Opens the database at `path` (taskq's tables and the orders), starts
/// the worker, and serves on `listener` until `shutdown` resolves.
async fn serve(
    listener: tokio::net::TcpListener,
    path: &Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let queue = Queue::open_sqlite(path).await?; // creates and migrates taskq's tables
    let options = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePool::connect_with(options).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL, shipped BOOLEAN NOT NULL DEFAULT FALSE)")
        .execute(&pool)
        .await?;

    let mut worker = Worker::new(queue, WorkerConfig::default());
    let for_worker = pool.clone();
    worker.handle("ship", move |id: i64, _ctx: TaskContext| {
        ship(for_worker.clone(), id)
    })?;
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(worker.run_until(stop.clone().cancelled_owned()));

    let app = Router::new()
        .route("/orders", post(create))
        .route("/orders/{id}", get(show))
        .with_state(pool);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    stop.cancel();
    worker.await??;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:3000").parse()?;
    let path = args.next().unwrap_or_else(|| "orders.db".to_owned());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, Path::new(&path), ctrl_c).await
}

/// Any failure of a request, answered as a 500 with its message.
struct AppError(String);

impl<E: std::fmt::Display> From<E> for AppError {
    fn from(error: E) -> Self {
        AppError(error.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": self.0 })),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    //! The example served on loopback and called over HTTP (`cargo test
    //! --example axum_sqlx --features sqlx`).

    use super::*;
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP/1.1 request to `addr`; the status and the JSON body.
    async fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        let (_, body) = response.split_once("\r\n\r\n").unwrap();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn an_order_and_its_task_commit_together_and_the_worker_ships_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.db");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn({
            let (path, stop) = (path.clone(), stop.clone());
            async move {
                serve(listener, &path, stop.cancelled_owned())
                    .await
                    .unwrap()
            }
        });

        let (status, created) = call(addr, "POST", "/orders", r#"{"item":"book"}"#).await;
        assert_eq!(status, 201, "{created}");
        let order = created["order"].as_i64().unwrap();
        let mut shipped = Value::Null;
        for _ in 0..200 {
            let (status, body) = call(addr, "GET", &format!("/orders/{order}"), "").await;
            assert_eq!(status, 200);
            shipped = body;
            if shipped["shipped"] == json!(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(
            shipped,
            json!({ "order": order, "item": "book", "shipped": true })
        );
        let (status, _) = call(addr, "POST", "/orders", r#"{"nope":1}"#).await;
        assert_eq!(status, 422, "a body without an item is refused");
        let (status, _) = call(addr, "GET", "/orders/999", "").await;
        assert_eq!(status, 404);

        stop.cancel();
        server.await.unwrap();
        // The task ran once and is gone; only the order stays.
        let queue = Queue::open_sqlite(&path).await.unwrap();
        assert!(queue
            .get(taskq::TaskId(created["task"].as_i64().unwrap()))
            .await
            .unwrap()
            .is_none());
        assert_eq!(queue.len("ship").await.unwrap(), 0);
    }
}
