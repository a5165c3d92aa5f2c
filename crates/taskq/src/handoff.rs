//! Hand-overs: a worker of this process that waits, idle, for an action
//! offers to take a task of it, and an enqueue of this process that
//! inserts such a task already claimed hands it over, so it starts without
//! a claim of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::attempt::WorkerId;
use crate::lease::Lease;

/// The open offers of the idle workers of one queue, per action.
#[derive(Debug, Default)]
pub(crate) struct HandOffs {
    idle: Mutex<HashMap<String, Vec<Offer>>>,
}

/// One idle worker's open offer: where to send the task, and who it is.
#[derive(Debug)]
pub(crate) struct Offer {
    /// Where the task goes.
    pub(crate) sender: oneshot::Sender<Lease>,
    /// The worker, recorded as the task's holder.
    pub(crate) worker: Arc<WorkerId>,
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

impl HandOffs {
    /// Offers to take a task of `action` that an enqueue of this process
    /// claims (see [`HandOff`]).
    pub(crate) fn offer(&self, action: &str, worker: &Arc<WorkerId>) -> HandOff {
        let (sender, receiver) = oneshot::channel();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let offers = idle.entry(action.to_owned()).or_default();
        offers.retain(|offer| !offer.sender.is_closed());
        offers.push(Offer {
            sender,
            worker: Arc::clone(worker),
        });
        HandOff { receiver }
    }

    /// Takes an offer for `action` that is still open, if any.
    pub(crate) fn take_offer(&self, action: &str) -> Option<Offer> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let offers = idle.get_mut(action)?;
        while let Some(offer) = offers.pop() {
            if !offer.sender.is_closed() {
                return Some(offer);
            }
        }
        None
    }

    /// Puts back an offer taken and not used.
    pub(crate) fn return_offer(&self, action: &str, offer: Offer) {
        if offer.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.entry(action.to_owned()).or_default().push(offer);
    }
}
