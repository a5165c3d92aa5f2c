//! Dispatch: for each action, claim tasks whenever handler slots are
//! free, start each in a runner, and wait for a wake-up, a hand-over or
//! the poll interval when idle.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::handler::ErasedHandler;
use super::metrics::Event;
use super::{runner, Registration, Shared, Slot};
use crate::error::Error;
use crate::lease::Lease;
use crate::wakeup::WakeupSubscription;

/// Takes a handler slot (and the action's, if it has a limit), waiting.
async fn take_slot(shared: &Shared, limit: &Option<Arc<Semaphore>>) -> Option<Slot> {
    let action = match limit {
        Some(limit) => Some(Arc::clone(limit).acquire_owned().await.ok()?),
        None => None,
    };
    let global = Arc::clone(&shared.slots).acquire_owned().await.ok()?;
    Some(Slot {
        _global: global,
        _action: action,
    })
}

/// Takes a handler slot if one is free now.
fn try_take_slot(shared: &Shared, limit: &Option<Arc<Semaphore>>) -> Option<Slot> {
    let action = match limit {
        Some(limit) => Some(Arc::clone(limit).try_acquire_owned().ok()?),
        None => None,
    };
    let global = Arc::clone(&shared.slots).try_acquire_owned().ok()?;
    Some(Slot {
        _global: global,
        _action: action,
    })
}

/// How long a prefetched task should wait for a handler slot, at most, by
/// the handlers' mean run time so far.
const PREFETCH_HORIZON: Duration = Duration::from_millis(50);

/// The most unstarted tasks a worker holds (more with more handlers).
const MAX_PREFETCH: usize = 10;

/// How many tasks one claim asks for, with `free` handler slots taken for
/// it, of the `capacity` the action may use at most:
/// - one per free slot;
/// - one per busy slot whose handler will likely have finished when the
///   claim's answer arrives (the handlers' mean run time against the
///   claims' mean round trip): quick handlers then get a claim sized by
///   the slots they will have, not by the few free at the moment it was
///   sent;
/// - as many more as the running handlers will get through within
///   [`PREFETCH_HORIZON`], at most `max(MAX_PREFETCH, concurrency)`.
///
/// Tasks beyond the free slots start as slots free up. Only the free slots
/// count until enough tries have run to judge.
fn claim_size(shared: &Shared, free: usize, capacity: usize, round_trip: Duration) -> usize {
    let batch = shared.config.claim_batch as usize;
    let metrics = shared.metrics.snapshot();
    let concurrency = shared.config.concurrency;
    if metrics.started < concurrency as u64 || metrics.started == 0 {
        return free.min(batch);
    }
    // Handlers quicker than the clock's microseconds divide by zero: the
    // infinities saturate below.
    let mean_run = metrics.total_run.as_secs_f64() / metrics.started as f64;
    let busy = capacity.saturating_sub(free);
    let done_soon = (busy as f64 * (round_trip.as_secs_f64() / mean_run).min(1.0)) as usize;
    let ahead = PREFETCH_HORIZON.as_secs_f64() * concurrency as f64 / mean_run;
    // A worker that crashes costs each task it holds a try, started or
    // not: keep the unstarted ones few.
    let ahead = (ahead as usize).min(MAX_PREFETCH.max(concurrency));
    (free + done_soon + ahead).min(batch)
}

/// Waits, idle, until tasks of `action` may be ready: a wake-up, the
/// poll interval, or `retry_in` (when the action's rate admits the next
/// claim), whichever comes first. Meanwhile an enqueue of this process may hand over a
/// task it claimed for this worker (see `Queue::enqueue_many`): each is
/// started in a free slot, and the wait goes on, since nothing older was
/// ready. Returns false when the worker stops claiming.
async fn wait_idle(
    shared: &Arc<Shared>,
    handler: &Arc<dyn ErasedHandler>,
    action: &str,
    limit: &Option<Arc<Semaphore>>,
    wakeup: &mut WakeupSubscription,
    retry_in: Option<Duration>,
) -> bool {
    enum Idle {
        Handed(Option<Lease>),
        Look,
        Stop,
    }
    let poll_interval = shared.queue.config().poll_interval;
    let poll = tokio::time::sleep(retry_in.map_or(poll_interval, |r| r.min(poll_interval)));
    tokio::pin!(poll);
    let _idle = shared.queue.wakeups().idle(action);
    loop {
        let mut offer = shared.queue.hand_offs().offer(action, &shared.worker);
        let idle = tokio::select! {
            handed = offer.receive() => Idle::Handed(handed),
            () = wakeup.woken() => Idle::Look,
            () = &mut poll => Idle::Look,
            () = shared.stop_claiming.cancelled() => Idle::Stop,
        };
        let (lease, go_on) = match idle {
            Idle::Handed(Some(lease)) => (Some(lease), None),
            // The offer was dropped unanswered: make another.
            Idle::Handed(None) => (None, None),
            // A task handed over just as the wait ended is still ours.
            Idle::Look => (offer.close(), Some(true)),
            Idle::Stop => (offer.close(), Some(false)),
        };
        if let Some(lease) = lease {
            let slot = tokio::select! {
                slot = take_slot(shared, limit) => slot,
                () = shared.stop_claiming.cancelled() => None,
            };
            match slot {
                Some(slot) => {
                    shared.metrics.count(Event::HandedOver);
                    start(shared, handler, lease, slot);
                }
                None => {
                    if let Err(error) = lease.release().await {
                        tracing::warn!(%error, "could not give back a task handed over at shutdown; it runs again after its lease expires");
                    }
                    return false;
                }
            }
        }
        if let Some(go_on) = go_on {
            return go_on;
        }
    }
}

/// Claims tasks of one action whenever handler slots are free, and hands
/// each to a runner; waits for a wake-up or the poll interval when idle.
/// When handlers are quick it claims a few more tasks than there are free
/// slots and starts them as slots free up, so that one claim serves many
/// tasks; those never wait longer than about [`PREFETCH_HORIZON`].
pub(super) async fn dispatch(shared: Arc<Shared>, registration: Registration) {
    let Registration {
        action,
        handler,
        limit,
        capacity,
    } = registration;
    let mut prefetched: VecDeque<Lease> = VecDeque::new();
    // The claims' mean round trip, weighing the last ones most.
    let mut round_trip = Duration::ZERO;
    let mut error_wait = shared.config.error_backoff;
    loop {
        let first = tokio::select! {
            slot = take_slot(&shared, &limit) => slot,
            _ = shared.stop_claiming.cancelled() => break,
        };
        let Some(first) = first else { break };
        if let Some(lease) = prefetched.pop_front() {
            start(&shared, &handler, lease, first);
            continue;
        }
        let slots = take_free_slots(&shared, &limit, first);
        let want = claim_size(&shared, slots.len(), capacity, round_trip);
        let mut wakeup = shared.queue.wakeups().subscribe(&action);
        let sent = Instant::now();
        let claimed = shared
            .queue
            .claim_held(&action, want as u32, &shared.worker)
            .await;
        round_trip = (round_trip * 7 + sent.elapsed()) / 8;
        let (leases, held) = match claimed {
            Ok(claimed) => claimed,
            Err(error) if error.is_permanent() => {
                stop_for_good(&shared, &action, error);
                break;
            }
            Err(error) => {
                drop(slots);
                shared.metrics.count(Event::ClaimError);
                tracing::warn!(%error, action, retry_in = ?error_wait, "taskq worker could not claim");
                tokio::select! {
                    _ = tokio::time::sleep(error_wait) => {}
                    _ = shared.stop_claiming.cancelled() => break,
                }
                error_wait = (error_wait * 2).min(shared.config.error_backoff * 10);
                continue;
            }
        };
        shared.metrics.count(Event::Claimed);
        error_wait = shared.config.error_backoff;
        // Fewer than asked for: nothing else was ready (or the action's
        // limits admitted no more), so once the claimed tasks have started,
        // wait for news instead of claiming again: a task enqueued, a slot
        // freed, the rate's next token.
        let drained = leases.len() < want;
        start_claimed(&shared, &handler, leases, slots, &mut prefetched);
        if drained
            && prefetched.is_empty()
            && !wait_idle(
                &shared,
                &handler,
                &action,
                &limit,
                &mut wakeup,
                held.retry_in,
            )
            .await
        {
            break;
        }
    }
    // Prefetched tasks never started: give them back at once.
    for lease in prefetched {
        if let Err(error) = lease.release().await {
            tracing::warn!(%error, "could not give back a prefetched task; it runs again after its lease expires");
        }
    }
}

/// Starts `lease`'s handler in `slot`.
fn start(shared: &Arc<Shared>, handler: &Arc<dyn ErasedHandler>, lease: Lease, slot: Slot) {
    let run = runner::run(Arc::clone(shared), Arc::clone(handler), lease, slot);
    shared.runners.spawn(run);
}

/// `first` and every other slot free now, up to a claim's batch.
fn take_free_slots(shared: &Shared, limit: &Option<Arc<Semaphore>>, first: Slot) -> Vec<Slot> {
    let mut slots = vec![first];
    while slots.len() < shared.config.claim_batch as usize {
        match try_take_slot(shared, limit) {
            Some(slot) => slots.push(slot),
            None => break,
        }
    }
    slots
}

/// Starts the claimed tasks in the slots taken for them; keeps the rest
/// to start as slots free up.
fn start_claimed(
    shared: &Arc<Shared>,
    handler: &Arc<dyn ErasedHandler>,
    leases: Vec<Lease>,
    slots: Vec<Slot>,
    prefetched: &mut VecDeque<Lease>,
) {
    let mut slots = slots.into_iter();
    for lease in leases {
        match slots.next() {
            Some(slot) => start(shared, handler, lease, slot),
            None => prefetched.push_back(lease),
        }
    }
}

/// Stops the worker: a claim met an error no retry can fix, which
/// [`Worker::run_until`](super::Worker::run_until) returns.
fn stop_for_good(shared: &Shared, action: &str, error: Error) {
    shared.metrics.count(Event::ClaimError);
    tracing::error!(%error, action, "taskq worker cannot claim, and no retry can fix it: stopping");
    shared
        .fatal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert(error);
    shared.failed.cancel();
}
