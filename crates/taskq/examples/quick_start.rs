//! The README's quick start, kept building by CI:
//!
//!     cargo run --example quick_start     # then Ctrl-C to stop the worker
//!
//! It enqueues a resize task into `jobs.db` in the current directory and
//! runs a worker for it and for the upload task each resize enqueues.

use serde::{Deserialize, Serialize};
use taskq::worker::{Outcome, TaskContext, Worker, WorkerConfig};
use taskq::{NewTask, Queue};

#[derive(Serialize, Deserialize)]
struct Resize {
    file: String,
}

async fn resize(job: Resize, ctx: TaskContext) -> Result<Outcome, String> {
    println!(
        "try {} of task {}: resizing {}",
        ctx.tries(),
        ctx.id(),
        job.file
    );
    // An Err retries with backoff; Outcome::fail gives up; Outcome::snooze waits.
    // Follow-ups are enqueued if and only if the completion commits.
    let upload = NewTask::json("upload", &job.file).map_err(|e| e.to_string())?;
    Ok(Outcome::follow_up(vec![upload]))
}

async fn upload(file: String, _ctx: TaskContext) -> Result<(), String> {
    println!("uploading {file}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), taskq::Error> {
    tracing_subscriber::fmt().init(); // the worker logs its start, stop and failures
    let queue = Queue::open_sqlite("jobs.db").await?; // created and migrated
    queue
        .enqueue(
            "resize",
            &Resize {
                file: "cat.png".into(),
            },
        )
        .await?;

    let mut worker = Worker::new(queue, WorkerConfig::default()); // 10 handlers at once
    worker.handle("resize", resize)?;
    worker.handle("upload", upload)?;
    worker.run().await // until Ctrl-C or SIGTERM, then a graceful shutdown
}
