//! Wake-up hints: an idle worker waiting for tasks of an action is woken
//! when one is enqueued, instead of waiting for its next poll.
//!
//! Hints only: a lost hint costs latency, never a task, because waiting
//! always ends after the poll interval and the claim is the truth.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::backend::Waiters;
use crate::names::TaskId;

/// Per-action signals that tasks may be ready.
///
/// A [`Queue`](crate::Queue) raises them itself after its own enqueues,
/// and a backend that can hear other processes' enqueues (PostgreSQL's
/// `LISTEN`, SQLite's data version) raises them for those.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    actions: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// How many waiters of each action wait idle now (not claiming).
    idle: Mutex<HashMap<String, usize>>,
    /// Counts the times a waiter began to wait idle.
    idle_began: AtomicU64,
    /// Told each time a waiter begins to wait idle (a backend that must
    /// look for ready tasks itself then looks at once).
    idle_signals: IdleSignals,
    /// The tasks this process's handlers run, told when their
    /// cancellation is asked for.
    running: Mutex<HashMap<TaskId, Arc<Notify>>>,
    /// Cancellations heard for tasks no handler of this process runs yet:
    /// a task claimed ahead (prefetched) starts after the notification
    /// came, and is told when it starts. The newest [`HEARD_KEPT`].
    heard: Mutex<VecDeque<TaskId>>,
}

/// The callbacks a backend gave [`Waiters::on_idle`].
#[derive(Default)]
struct IdleSignals(Mutex<Vec<Box<dyn Fn() -> bool + Send + Sync>>>);

impl fmt::Debug for IdleSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.lock().map(|signals| signals.len()).unwrap_or(0);
        write!(f, "IdleSignals({n})")
    }
}

/// A waiter that waits idle for an action, until dropped.
#[derive(Debug)]
pub(crate) struct IdleWait {
    wakeups: Arc<Wakeups>,
    action: String,
}

impl Drop for IdleWait {
    fn drop(&mut self) {
        let mut idle = self.wakeups.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = idle.get_mut(&self.action) {
            *n -= 1;
            if *n == 0 {
                idle.remove(&self.action);
            }
        }
    }
}

/// How many cancellations of tasks not (yet) running are remembered.
const HEARD_KEPT: usize = 1024;

/// A running task's watch for its cancellation request; stops watching
/// when dropped.
#[derive(Debug)]
pub(crate) struct CancelWatch {
    wakeups: Arc<Wakeups>,
    id: TaskId,
    notify: Arc<Notify>,
}

impl CancelWatch {
    /// Resolves once the task's cancellation was asked for (a request
    /// made before the wait counts).
    pub(crate) async fn requested(&self) {
        self.notify.notified().await
    }
}

impl Drop for CancelWatch {
    fn drop(&mut self) {
        let mut running = self
            .wakeups
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if running
            .get(&self.id)
            .is_some_and(|notify| Arc::ptr_eq(notify, &self.notify))
        {
            running.remove(&self.id);
        }
    }
}

/// A subscription to one action's wake-ups, taken *before* looking for
/// work so that a task enqueued in between is not missed.
#[derive(Debug)]
pub(crate) struct WakeupSubscription {
    receiver: watch::Receiver<u64>,
}

impl Wakeups {
    /// Signals that tasks of `action` may be ready.
    pub(crate) fn wake(&self, action: &str) {
        let actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = actions.get(action) {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Signals every action: after a reconnect, when hints may have been
    /// missed.
    pub(crate) fn wake_all(&self) {
        let actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        for sender in actions.values() {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The actions that someone waits for idle now.
    pub(crate) fn waited(&self) -> Vec<String> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.keys().cloned().collect()
    }

    /// Marks a waiter of `action` as waiting idle (having found nothing to
    /// claim) until the mark is dropped, and tells the backends that look
    /// for ready tasks themselves.
    pub(crate) fn idle(self: &Arc<Self>, action: &str) -> IdleWait {
        {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            *idle.entry(action.to_owned()).or_default() += 1;
        }
        self.idle_began.fetch_add(1, Ordering::SeqCst);
        let mut signals = self
            .idle_signals
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // A signal whose listener is gone asks to be dropped.
        signals.retain(|signal| signal());
        IdleWait {
            wakeups: Arc::clone(self),
            action: action.to_owned(),
        }
    }

    /// Watches for the cancellation request of the running task `id`.
    pub(crate) fn watch_cancel(self: &Arc<Self>, id: TaskId) -> CancelWatch {
        let notify = Arc::new(Notify::new());
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.insert(id, Arc::clone(&notify));
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = heard.iter().position(|heard| *heard == id) {
            heard.remove(at);
            notify.notify_one();
        }
        CancelWatch {
            wakeups: Arc::clone(self),
            id,
            notify,
        }
    }

    /// Tells the handler running task `id` in this process, if any, that
    /// its cancellation was asked for.
    pub(crate) fn cancel_requested(&self, id: TaskId) {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get(&id) {
            Some(notify) => notify.notify_one(),
            None => {
                let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
                if heard.len() >= HEARD_KEPT {
                    heard.pop_front();
                }
                heard.push_back(id);
            }
        }
    }

    /// Subscribes to the wake-ups of `action`.
    pub(crate) fn subscribe(&self, action: &str) -> WakeupSubscription {
        let mut actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        let sender = actions
            .entry(action.to_owned())
            .or_insert_with(|| watch::channel(0).0);
        WakeupSubscription {
            receiver: sender.subscribe(),
        }
    }
}

impl Waiters for Wakeups {
    fn waited(&self) -> Vec<String> {
        Wakeups::waited(self)
    }

    fn idle_began(&self) -> u64 {
        self.idle_began.load(Ordering::SeqCst)
    }

    fn on_idle(&self, signal: Box<dyn Fn() -> bool + Send + Sync>) {
        let mut signals = self
            .idle_signals
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        signals.push(signal);
    }

    fn wake(&self, action: &str) {
        Wakeups::wake(self, action);
    }

    fn wake_all(&self) {
        Wakeups::wake_all(self);
    }

    fn cancel_requested(&self, id: TaskId) {
        Wakeups::cancel_requested(self, id);
    }

    fn running(&self) -> Vec<TaskId> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.keys().copied().collect()
    }
}

impl WakeupSubscription {
    /// Waits, without a time limit, until a wake-up arrives after the
    /// subscription was taken (or after the last wait).
    pub(crate) async fn woken(&mut self) {
        if self.receiver.changed().await.is_err() {
            // The queue is gone: nothing will wake this subscription.
            std::future::pending::<()>().await;
        }
    }

    /// Waits until a wake-up arrives after the subscription was taken (or
    /// after the last wait), or until `timeout` passes. Returns whether it
    /// was woken.
    pub(crate) async fn wait(&mut self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.receiver.changed()).await,
            Ok(Ok(()))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancellation_heard_before_the_task_started_reaches_it() {
        let wakeups = Arc::new(Wakeups::default());
        wakeups.cancel_requested(TaskId(7));
        let watch = wakeups.watch_cancel(TaskId(7));
        tokio::time::timeout(Duration::from_secs(5), watch.requested())
            .await
            .expect("told at once");
        let other = wakeups.watch_cancel(TaskId(8));
        assert!(
            tokio::time::timeout(Duration::from_millis(20), other.requested())
                .await
                .is_err(),
            "only the task asked for"
        );
    }

    #[test]
    fn idle_waiters_are_named_and_signalled_until_a_signal_says_it_is_gone() {
        use std::sync::atomic::AtomicUsize;
        let wakeups = Arc::new(Wakeups::default());
        let _subscribed = wakeups.subscribe("a");
        assert!(wakeups.waited().is_empty(), "subscribed, not idle");
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        Waiters::on_idle(
            &*wakeups,
            Box::new(move || counted.fetch_add(1, Ordering::SeqCst) == 0),
        );
        let first = wakeups.idle("a");
        let second = wakeups.idle("a");
        assert_eq!(wakeups.waited(), ["a"]);
        assert_eq!(Waiters::idle_began(&*wakeups), 2);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "kept after true, dropped after false"
        );
        drop(first);
        assert_eq!(wakeups.waited(), ["a"], "one still waits");
        drop(second);
        assert!(wakeups.waited().is_empty());
        drop(wakeups.idle("b"));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the dropped signal is not called"
        );
    }

    #[tokio::test]
    async fn a_wake_between_subscribe_and_wait_is_not_missed() {
        let wakeups = Wakeups::default();
        let mut subscription = wakeups.subscribe("a");
        wakeups.wake("b");
        wakeups.wake("a");
        assert!(subscription.wait(Duration::from_secs(5)).await);
        assert!(
            !subscription.wait(Duration::from_millis(10)).await,
            "consumed"
        );
        wakeups.wake_all();
        assert!(subscription.wait(Duration::from_secs(5)).await);
    }
}
