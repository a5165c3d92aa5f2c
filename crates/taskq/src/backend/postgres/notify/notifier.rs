//! Wake-up notifications, sent after the inserts that cause them have
//! committed, in transactions of their own: NOTIFY serializes the commits
//! of the transactions that send it, so inserts must not.
//!
//! Each action is notified at once when it was not notified in the last
//! [`WINDOW`], otherwise once at the end of that window: an idle worker
//! hears of the first task at once, and a burst of enqueues costs a few
//! notifications instead of one each. Nothing is sent while no other
//! session than this backend's own listener listens on the schema's
//! channel (checked at most every [`PRESENCE`]): the queue wakes its own
//! waiters in the process, and a notification nobody else hears costs a
//! commit that competes with the claim it would trigger (BENCHMARKS.md
//! has the figures).
//!
//! An enqueue of one task that would be notified at once sends the
//! notification itself instead, right behind its insert on the same
//! connection ([`Notifier::send_with_insert`]): the server runs it as soon
//! as the insert has committed, without waiting for the producer to hear
//! back and hand the notification to the sender.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;

use crate::backend::postgres::pool::execute_in_background;
use crate::backend::postgres::run::Runner;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The least time between two notifications of one action.
const WINDOW: Duration = Duration::from_millis(10);

/// How long a check for listeners is trusted.
const PRESENCE: Duration = Duration::from_secs(1);

/// The `application_name` of the listener connections of a schema.
pub(in crate::backend::postgres) fn listener_name(channel: &str) -> String {
    format!("taskq listener {channel}")
}

/// The longest `application_name` the server keeps (NAMEDATALEN - 1
/// bytes); it cuts longer ones, so a long schema's listeners show only
/// the start of their name.
const APPLICATION_NAME_MAX: usize = 63;

/// [`listener_name`] as the server shows it. Names are ASCII.
pub(in crate::backend::postgres) fn listener_name_shown(channel: &str) -> String {
    let mut name = listener_name(channel);
    name.truncate(APPLICATION_NAME_MAX);
    name
}

/// The server process id of this backend's own listener session while it
/// listens, 0 otherwise (no server process has id 0).
pub(in crate::backend::postgres) type OwnListener = Arc<AtomicI32>;

/// The last check for listeners: whether there were any, and when.
type Presence = Arc<Mutex<Option<(bool, Instant)>>>;

/// When each action was last notified.
type LastSent = Arc<Mutex<HashMap<String, Instant>>>;

/// How an enqueue sends its own notification behind its insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::backend::postgres) enum Inline {
    /// Others listen: notify.
    Always,
    /// Not known: notify if another taskq listener is connected.
    IfHeard,
}

/// What the sender is asked to do.
#[derive(Debug)]
enum Request {
    /// Wake these actions' waiters.
    Wake(Vec<String>),
    /// Look again whether other sessions listen.
    Look,
    /// Send everything pending now, then answer.
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
pub(in crate::backend::postgres) struct Notifier {
    requests: mpsc::UnboundedSender<Request>,
    task: JoinHandle<()>,
    presence: Presence,
    last_sent: LastSent,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether a session other than `own` listens for this channel's
/// wake-ups; `true` when that cannot be told.
async fn others_listen((pool, runner): &Db, channel: &str, own: &OwnListener) -> bool {
    let found = async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let own = own.load(Ordering::Relaxed);
        let rows = runner
            .query(
                &client,
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
                 WHERE application_name = $1 AND datname = current_database() AND pid <> $2)",
                &[&listener_name_shown(channel), &own],
            )
            .await
            .map_err(|e| e.to_string())?;
        let row = rows.first().ok_or("no answer")?;
        row.try_get::<_, bool>(0).map_err(|e| e.to_string())
    }
    .await;
    found.unwrap_or(true)
}

/// The pool and how statements go out on it.
type Db = (Pool, Arc<Runner>);

async fn send((pool, runner): &Db, sql: &str, channel: &str, actions: &[String]) {
    let sent = execute_in_background(pool, runner, sql, &[&channel, &actions]).await;
    // A hint only: waiters poll, so a lost one costs latency.
    if let Err(error) = sent {
        tracing::debug!(%error, "could not send a wake-up notification");
    }
}

fn cached(presence: &Presence) -> Option<(bool, Instant)> {
    *presence.lock().unwrap_or_else(|e| e.into_inner())
}

fn lock(last_sent: &LastSent) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
    last_sent.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `action` may be notified at `now`: not notified in the last
/// [`WINDOW`].
fn window_passed(last_sent: &HashMap<String, Instant>, action: &str, now: Instant) -> bool {
    last_sent.get(action).is_none_or(|at| now >= *at + WINDOW)
}

/// What the sender has been asked and not done yet.
#[derive(Default)]
struct Inbox {
    pending: BTreeSet<String>,
    look: bool,
    flushes: Vec<oneshot::Sender<()>>,
}

impl Inbox {
    fn take(&mut self, request: Request) {
        match request {
            Request::Wake(actions) => self.pending.extend(actions),
            Request::Look => self.look = true,
            Request::Flush(reply) => self.flushes.push(reply),
        }
    }

    /// The pending actions to notify at `now`: those not notified in the
    /// last [`WINDOW`], or all of them when a flush waits.
    fn due(&mut self, sent: &LastSent, now: Instant) -> Vec<String> {
        let mut last_sent = lock(sent);
        let flush = !self.flushes.is_empty();
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|action| flush || window_passed(&last_sent, action, now))
            .cloned()
            .collect();
        for action in &due {
            self.pending.remove(action);
            last_sent.insert(action.clone(), now);
        }
        last_sent.retain(|_, at| now.duration_since(*at) < WINDOW * 100);
        due
    }
}

/// The sender: notifies what it is asked to, each action at most once per
/// [`WINDOW`], while other sessions listen.
async fn run(
    db: Db,
    sql: String,
    channel: String,
    own: OwnListener,
    mut requests: mpsc::UnboundedReceiver<Request>,
    known: Presence,
    sent: LastSent,
) {
    let mut inbox = Inbox::default();
    loop {
        let next_due = {
            let last_sent = lock(&sent);
            inbox
                .pending
                .iter()
                .filter_map(|action| last_sent.get(action).map(|at| *at + WINDOW))
                .min()
        };
        tokio::select! {
            received = requests.recv() => match received {
                Some(request) => inbox.take(request),
                None => return,
            },
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
        }
        while let Ok(more) = requests.try_recv() {
            inbox.take(more);
        }
        let now = Instant::now();
        let due = inbox.due(&sent, now);
        if !due.is_empty() || inbox.look {
            let listening = match cached(&known) {
                Some((listening, checked))
                    if now.duration_since(checked) < PRESENCE && !inbox.look =>
                {
                    listening
                }
                _ => {
                    let listening = others_listen(&db, &channel, &own).await;
                    *known.lock().unwrap_or_else(|e| e.into_inner()) = Some((listening, now));
                    listening
                }
            };
            inbox.look = false;
            if listening && !due.is_empty() {
                send(&db, &sql, &channel, &due).await;
            }
        }
        for reply in inbox.flushes.drain(..) {
            let _ = reply.send(());
        }
    }
}

impl Notifier {
    /// Starts the sender; `own` is this backend's listener, whose waiters
    /// the queue wakes in the process.
    pub(in crate::backend::postgres) fn spawn(
        pool: Pool,
        runner: Arc<Runner>,
        sql: String,
        channel: String,
        own: OwnListener,
    ) -> Self {
        let (requests, inbox) = mpsc::unbounded_channel::<Request>();
        let presence: Presence = Arc::default();
        let last_sent: LastSent = Arc::default();
        let task = tokio::spawn(run(
            (pool, runner),
            sql,
            channel,
            own,
            inbox,
            Arc::clone(&presence),
            Arc::clone(&last_sent),
        ));
        Notifier {
            requests,
            task,
            presence,
            last_sent,
        }
    }

    /// Whether an enqueue of tasks of the `due` actions should send its
    /// notification itself, pipelined behind its insert, and how: when
    /// no action was notified in the last [`WINDOW`] and other sessions
    /// listened at the last check, which is recent, [`Inline::Always`];
    /// when it is not known whether they listen (the first enqueue of a
    /// process, which may exit right after it: its wake-up must not be
    /// left to the sender), [`Inline::IfHeard`], and the sender looks for
    /// listeners. If it sends, the actions count as notified now.
    pub(in crate::backend::postgres) fn send_with_insert(&self, due: &[String]) -> Option<Inline> {
        let inline = match cached(&self.presence) {
            Some((false, checked)) if checked.elapsed() < PRESENCE => return None,
            Some((true, checked)) if checked.elapsed() < PRESENCE => Inline::Always,
            _ => {
                let _ = self.requests.send(Request::Look);
                Inline::IfHeard
            }
        };
        let now = Instant::now();
        let mut last_sent = lock(&self.last_sent);
        if due.is_empty()
            || !due
                .iter()
                .all(|action| window_passed(&last_sent, action, now))
        {
            return None;
        }
        for action in due {
            last_sent.insert(action.clone(), now);
        }
        Some(inline)
    }

    /// Asks for a wake-up of these actions' waiters; does not wait.
    pub(in crate::backend::postgres) fn notify(&self, actions: Vec<String>) {
        if actions.is_empty() {
            return;
        }
        // Nobody listened a moment ago: do not even wake the sender.
        if let Some((false, checked)) = cached(&self.presence) {
            if checked.elapsed() < PRESENCE {
                return;
            }
        }
        let _ = self.requests.send(Request::Wake(actions));
    }

    /// Sends every wake-up still waiting for its window, and returns once
    /// they are sent.
    pub(in crate::backend::postgres) async fn flush(&self) {
        let (reply, sent) = oneshot::channel();
        if self.requests.send(Request::Flush(reply)).is_ok() {
            let _ = sent.await;
        }
    }
}
