//! The `LISTEN` connection that turns other processes' enqueues into
//! wake-ups. Notifications are hints: when the connection drops, every
//! waiter is woken to look for itself, and the listener reconnects.

use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use super::notifier::OwnListener;
use crate::backend::Waiters;

/// Listens on `channel` until the returned task is aborted, and keeps the
/// server process id of its session in `own` while it listens.
pub(in crate::backend::postgres) fn spawn(
    mut config: tokio_postgres::Config,
    channel: String,
    waiters: Arc<dyn Waiters>,
    own: OwnListener,
) -> JoinHandle<()> {
    // Enqueuers look for this name before they send notifications.
    config.application_name(super::notifier::listener_name(&channel));
    tokio::spawn(async move {
        let listen = format!("LISTEN \"{channel}\"");
        let listening = async |client: &tokio_postgres::Client| {
            client.batch_execute(&listen).await?;
            let row = client.query_one("SELECT pg_backend_pid()", &[]).await?;
            row.try_get::<_, i32>(0)
        };
        let mut retry_in = Duration::from_millis(100);
        loop {
            match config.connect(NoTls).await {
                Ok((client, mut connection)) => {
                    retry_in = Duration::from_millis(100);
                    let wake = Arc::clone(&waiters);
                    let messages = tokio::spawn(async move {
                        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                            match message {
                                Ok(AsyncMessage::Notification(note)) => {
                                    deliver(&*wake, note.payload())
                                }
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                    });
                    match listening(&client).await {
                        Ok(pid) => {
                            own.store(pid, Ordering::Relaxed);
                            // Hints sent while we were away are lost.
                            waiters.wake_all();
                            let _ = messages.await;
                            own.store(0, Ordering::Relaxed);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "taskq could not LISTEN for wake-ups");
                            messages.abort();
                        }
                    }
                    tracing::debug!("taskq wake-up listener disconnected; reconnecting");
                }
                Err(error) => {
                    tracing::debug!(%error, "taskq wake-up listener could not connect");
                }
            }
            waiters.wake_all();
            tokio::time::sleep(retry_in).await;
            retry_in = (retry_in * 2).min(Duration::from_secs(5));
        }
    })
}

/// What `task_cancel.sql` sends for a running task: a control character
/// no action name has, then `cancel` and the task's id.
const CANCEL_PREFIX: &str = "\u{1}cancel ";

/// Hands one notification's payload to `waiters`: an action whose tasks
/// may be ready, or a running task whose cancellation was asked for.
fn deliver(waiters: &dyn Waiters, payload: &str) {
    match payload.strip_prefix(CANCEL_PREFIX) {
        Some(id) => {
            if let Ok(id) = id.parse::<i64>() {
                waiters.cancel_requested(crate::names::TaskId(id));
            }
        }
        None => waiters.wake(payload),
    }
}
