//! The controller of the cancel-and-pause scenario: while the faults run,
//! it cancels queued and running tasks and pauses the action now and
//! then, writing each acknowledged act to a journal of its own, so the
//! checker can tell whether a task cancelled while queued ever ran after,
//! or a worker claimed while the action was paused.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use taskq::{CancelOutcome, ListOptions, Queue, State};

use crate::roles::{unix_micros, Journal, ACTION};

/// How long each pause lasts, and how much of its start a worker may
/// still use for tasks it claimed just before (prefetched ones start
/// within about 50 ms, and claims in flight are answered).
pub(crate) const PAUSE: Duration = Duration::from_millis(1_500);
pub(crate) const PAUSE_GRACE: Duration = Duration::from_millis(500);

/// Cancels and pauses until `stop` is set, then resumes the action.
pub(crate) async fn run(queue: Queue, dir: &Path, stop: Arc<AtomicBool>) {
    let mut journal = Journal::open(&dir.join("control-0.jsonl"));
    let mut round = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        cancel_some(&queue, &mut journal, State::Queued, 3).await;
        cancel_some(&queue, &mut journal, State::Running, 1).await;
        if round.is_multiple_of(4) {
            pause_a_while(&queue, &mut journal).await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Nothing may stay paused for the recovery.
    while queue.resume(ACTION).await.is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Cancels up to `n` tasks of the action in `state`, from a random point
/// of the list.
async fn cancel_some(queue: &Queue, journal: &mut Journal, state: State, n: usize) {
    let page = ListOptions {
        action: Some(ACTION.to_owned()),
        state: Some(state),
        limit: 50,
        ..ListOptions::default()
    };
    let Ok(tasks) = queue.list(&page).await else {
        return;
    };
    if tasks.is_empty() {
        return;
    }
    for _ in 0..n {
        let task = &tasks[fastrand::usize(..tasks.len())];
        match queue.cancel(task.id).await {
            Ok(outcome) => {
                let said = match outcome {
                    CancelOutcome::Cancelled => "cancelled",
                    CancelOutcome::Requested => "requested",
                    CancelOutcome::AlreadyFinished(_) => "finished",
                };
                journal.line(json!({"cancel": task.id.0, "outcome": said, "at": unix_micros()}));
            }
            // A server stopped or a file locked: the next round tries again.
            Err(_) => return,
        }
    }
}

/// Pauses the action for [`PAUSE`], then resumes it, journalling when the
/// pause was acknowledged and when the resume was asked for.
async fn pause_a_while(queue: &Queue, journal: &mut Journal) {
    if queue.pause(ACTION).await.is_err() {
        return;
    }
    let paused = unix_micros();
    tokio::time::sleep(PAUSE).await;
    let resuming = unix_micros();
    journal.line(json!({"paused": paused, "resuming": resuming}));
    while queue.resume(ACTION).await.is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
