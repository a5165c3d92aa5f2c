//! Wake-up notifications, sent after the inserts that cause them have
//! committed, in transactions of their own: NOTIFY serializes the commits
//! of the transactions that send it, so inserts must not.
//!
//! Each action is notified at once when it was not notified in the last
//! [`WINDOW`], otherwise once at the end of that window: an idle worker
//! hears of the first task at once, and a burst of enqueues costs a few
//! notifications instead of one each. Nothing is sent while no process
//! listens on the schema's channel (checked at most every [`PRESENCE`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;

use super::execute_in_background;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The least time between two notifications of one action.
const WINDOW: Duration = Duration::from_millis(10);

/// How long a check for listeners is trusted.
const PRESENCE: Duration = Duration::from_secs(1);

/// The `application_name` of the listener connections of a schema.
pub(super) fn listener_name(channel: &str) -> String {
    format!("taskq listener {channel}")
}

/// The last check for listeners: whether there were any, and when.
type Presence = Arc<Mutex<Option<(bool, Instant)>>>;

#[derive(Debug)]
pub(super) struct Notifier {
    actions: mpsc::UnboundedSender<Vec<String>>,
    task: JoinHandle<()>,
    presence: Presence,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether any session listens for this channel's wake-ups; `true` when
/// that cannot be told.
async fn anyone_listens(pool: &Pool, channel: &str) -> bool {
    let found = async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let statement = client
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
                 WHERE application_name = $1 AND datname = current_database())",
            )
            .await
            .map_err(|e| e.to_string())?;
        let row = client
            .query_one(&statement, &[&listener_name(channel)])
            .await
            .map_err(|e| e.to_string())?;
        row.try_get::<_, bool>(0).map_err(|e| e.to_string())
    }
    .await;
    found.unwrap_or(true)
}

async fn send(pool: &Pool, sql: &str, channel: &str, actions: &[String]) {
    let sent = execute_in_background(pool, sql, &[&channel, &actions]).await;
    // A hint only: waiters poll, so a lost one costs latency.
    if let Err(error) = sent {
        tracing::debug!(%error, "could not send a wake-up notification");
    }
}

fn cached(presence: &Presence) -> Option<(bool, Instant)> {
    *presence.lock().unwrap_or_else(|e| e.into_inner())
}

impl Notifier {
    pub(super) fn spawn(pool: Pool, sql: String, channel: String) -> Self {
        let (actions, mut inbox) = mpsc::unbounded_channel::<Vec<String>>();
        let presence: Presence = Arc::default();
        let known = Arc::clone(&presence);
        let task = tokio::spawn(async move {
            let mut last_sent: HashMap<String, Instant> = HashMap::new();
            let mut pending: BTreeSet<String> = BTreeSet::new();
            loop {
                let next_due = pending
                    .iter()
                    .filter_map(|action| last_sent.get(action).map(|at| *at + WINDOW))
                    .min();
                tokio::select! {
                    received = inbox.recv() => match received {
                        Some(actions) => pending.extend(actions),
                        None => return,
                    },
                    _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
                }
                while let Ok(more) = inbox.try_recv() {
                    pending.extend(more);
                }
                let now = Instant::now();
                let due: Vec<String> = pending
                    .iter()
                    .filter(|action| last_sent.get(*action).is_none_or(|at| now >= *at + WINDOW))
                    .cloned()
                    .collect();
                if due.is_empty() {
                    continue;
                }
                for action in &due {
                    pending.remove(action);
                    last_sent.insert(action.clone(), now);
                }
                let listening = match cached(&known) {
                    Some((listening, checked)) if now.duration_since(checked) < PRESENCE => {
                        listening
                    }
                    _ => {
                        let listening = anyone_listens(&pool, &channel).await;
                        *known.lock().unwrap_or_else(|e| e.into_inner()) = Some((listening, now));
                        listening
                    }
                };
                if listening {
                    send(&pool, &sql, &channel, &due).await;
                }
                last_sent.retain(|_, at| now.duration_since(*at) < WINDOW * 100);
            }
        });
        Notifier {
            actions,
            task,
            presence,
        }
    }

    /// Asks for a wake-up of these actions' waiters; does not wait.
    pub(super) fn notify(&self, actions: Vec<String>) {
        if actions.is_empty() {
            return;
        }
        // Nobody listened a moment ago: do not even wake the sender.
        if let Some((false, checked)) = cached(&self.presence) {
            if checked.elapsed() < PRESENCE {
                return;
            }
        }
        let _ = self.actions.send(actions);
    }
}
