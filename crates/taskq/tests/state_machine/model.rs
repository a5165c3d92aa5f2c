//! The model: what the lifecycle says each operation does, in memory.

use std::collections::BTreeMap;

use taskq::backend::ExpiryBackoff;
use taskq::{Backoff, LeaseRef, State, TaskId};

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ModelTask {
    pub(crate) action: usize,
    pub(crate) state: State,
    pub(crate) tries: i32,
    pub(crate) max_tries: i32,
    pub(crate) token: i64,
    pub(crate) not_before: i64,
    pub(crate) expires: Option<i64>,
    pub(crate) timeout: i64,
    pub(crate) priority: i16,
    /// The one unique key the test uses, when the task has it.
    pub(crate) keyed: bool,
    pub(crate) cancel_requested: bool,
}

pub(crate) struct Model {
    pub(crate) now: i64,
    pub(crate) backoff: Backoff,
    pub(crate) expiry: ExpiryBackoff,
    pub(crate) tasks: BTreeMap<TaskId, ModelTask>,
    pub(crate) ever: Vec<TaskId>,
    pub(crate) paused: [bool; 2],
}

impl Model {
    pub(crate) fn holds(&self, lease: LeaseRef) -> bool {
        self.tasks
            .get(&lease.id)
            .is_some_and(|t| t.state == State::Running && t.token == lease.token)
    }

    /// Requeues (or fails, or cancels) the expired leases of one action,
    /// or of all; returns how many.
    pub(crate) fn expire(&mut self, action: Option<usize>) -> u64 {
        let now = self.now;
        let mut count = 0;
        for task in self.tasks.values_mut() {
            let expired = task.state == State::Running && task.expires.is_some_and(|e| e <= now);
            if !expired || action.is_some_and(|a| a != task.action) {
                continue;
            }
            count += 1;
            task.expires = None;
            if task.cancel_requested {
                task.state = State::Cancelled;
            } else if task.max_tries >= 0 && task.tries >= task.max_tries {
                task.state = State::Failed;
            } else {
                task.state = State::Queued;
                if task.tries > 1 {
                    task.not_before = now + self.expiry.delay(task.tries).as_micros() as i64;
                }
            }
        }
        count
    }

    /// The task a claim of `action` takes: none while it is paused, else
    /// the first ready one by priority, not-before and id.
    pub(crate) fn next_claim(&self, action: usize) -> Option<TaskId> {
        if self.paused[action] {
            return None;
        }
        self.tasks
            .iter()
            .filter(|(_, t)| {
                t.action == action && t.state == State::Queued && t.not_before <= self.now
            })
            .min_by_key(|(id, t)| (t.priority, t.not_before, **id))
            .map(|(id, _)| *id)
    }

    /// The task of `action` holding the unique key, if one is queued or
    /// running.
    pub(crate) fn key_holder(&self, action: usize) -> Option<TaskId> {
        self.tasks
            .iter()
            .find(|(_, t)| {
                t.action == action && t.keyed && matches!(t.state, State::Queued | State::Running)
            })
            .map(|(id, _)| *id)
    }

    pub(crate) fn ready(&self, action: usize) -> u64 {
        if self.paused[action] {
            return 0;
        }
        let now = self.now;
        self.tasks
            .values()
            .filter(|t| t.action == action)
            .filter(|t| match t.state {
                State::Queued => t.not_before <= now,
                // A lease that expired on the last try is not claimable:
                // the next claim fails the task instead.
                State::Running => {
                    t.expires.is_some_and(|e| e <= now)
                        && (t.max_tries == taskq::FOREVER || t.tries < t.max_tries)
                }
                _ => false,
            })
            .count() as u64
    }
}
