//! Wake-up hints: an idle worker waiting for tasks of an action is woken
//! when one is enqueued, instead of waiting for its next poll.
//!
//! Hints only: a lost hint costs latency, never a task, because waiting
//! always ends after the poll interval and the claim is the truth.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::lease::Lease;

/// Per-action signals that tasks may be ready.
///
/// A [`Queue`](crate::Queue) raises them itself after its own enqueues,
/// and a backend that can hear other processes' enqueues (PostgreSQL's
/// `LISTEN`, SQLite's data version) raises them for those.
#[derive(Debug, Default)]
pub struct Wakeups {
    actions: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Workers of this process that wait, idle, for an action: an enqueue
    /// of that action may hand its task to one of them, claimed.
    idle: Mutex<HashMap<String, Vec<oneshot::Sender<Lease>>>>,
}

/// A worker's offer, while it waits idle for an action, to take a task
/// that an enqueue of this process claims for it. Withdrawn by
/// [`close`](Self::close) or when dropped.
#[derive(Debug)]
pub(crate) struct HandOff {
    receiver: oneshot::Receiver<Lease>,
}

impl HandOff {
    /// The next task handed over, when one is.
    pub(crate) async fn receive(&mut self) -> Option<Lease> {
        (&mut self.receiver).await.ok()
    }

    /// Withdraws the offer; returns a task handed over just before.
    pub(crate) fn close(mut self) -> Option<Lease> {
        self.receiver.close();
        self.receiver.try_recv().ok()
    }
}

/// A subscription to one action's wake-ups, taken *before* looking for
/// work so that a task enqueued in between is not missed.
#[derive(Debug)]
pub struct WakeupSubscription {
    receiver: watch::Receiver<u64>,
}

impl Wakeups {
    /// Signals that tasks of `action` may be ready.
    pub fn wake(&self, action: &str) {
        let actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = actions.get(action) {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Signals every action: after a reconnect, when hints may have been
    /// missed.
    pub fn wake_all(&self) {
        let actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        for sender in actions.values() {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Offers to take a task of `action` that an enqueue of this process
    /// claims (see [`HandOff`]).
    pub(crate) fn offer(&self, action: &str) -> HandOff {
        let (sender, receiver) = oneshot::channel();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let offers = idle.entry(action.to_owned()).or_default();
        offers.retain(|offer| !offer.is_closed());
        offers.push(sender);
        HandOff { receiver }
    }

    /// Takes an offer for `action` that is still open, if any.
    pub(crate) fn take_offer(&self, action: &str) -> Option<oneshot::Sender<Lease>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let offers = idle.get_mut(action)?;
        while let Some(offer) = offers.pop() {
            if !offer.is_closed() {
                return Some(offer);
            }
        }
        None
    }

    /// Puts back an offer taken and not used.
    pub(crate) fn return_offer(&self, action: &str, offer: oneshot::Sender<Lease>) {
        if offer.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.entry(action.to_owned()).or_default().push(offer);
    }

    /// The actions that someone waits for now.
    pub fn waited(&self) -> Vec<String> {
        let actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        actions
            .iter()
            .filter(|(_, sender)| sender.receiver_count() > 0)
            .map(|(action, _)| action.clone())
            .collect()
    }

    /// Subscribes to the wake-ups of `action`.
    pub fn subscribe(&self, action: &str) -> WakeupSubscription {
        let mut actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        let sender = actions
            .entry(action.to_owned())
            .or_insert_with(|| watch::channel(0).0);
        WakeupSubscription {
            receiver: sender.subscribe(),
        }
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
    pub async fn wait(&mut self, timeout: Duration) -> bool {
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
