//! A model-based property test: random sequences of operations run against
//! a real SQLite queue and against a small in-memory model of the
//! lifecycle, on a manual clock that the operations move forward, and
//! after every step the two must agree: states, tries, tokens, not-before
//! times, lease ends, `len` and `stats`. Time moving is what brings lease
//! expiry (lazy in claims, eager in `requeue_expired`), delayed tasks and
//! backoffs into the test without waiting. Priorities, a unique key,
//! cancellations and paused actions are among the operations: no task ever
//! reaches a state the lifecycle does not allow, and none cancelled before
//! it ran is ever claimed.

mod model;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use taskq::backend::ExpiryBackoff;
use taskq::blocking::{Lease, Queue};
use taskq::sqlite::{SqliteBackend, SqliteConfig};
use taskq::{
    Backoff, CancelOutcome, Clock, Error, FailOutcome, LeaseRef, ManualClock, NewTask, QueueConfig,
    State,
};

use model::{Model, ModelTask};

const ACTIONS: [&str; 2] = ["a", "b"];

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        action: usize,
        max_tries: i32,
        delay_ms: u64,
        timeout_ms: u64,
        priority: i16,
        keyed: bool,
    },
    Cancel {
        task: usize,
    },
    Pause {
        action: usize,
    },
    Resume {
        action: usize,
    },
    Claim {
        action: usize,
    },
    Complete {
        lease: usize,
    },
    Fail {
        lease: usize,
    },
    FailPermanently {
        lease: usize,
    },
    Release {
        lease: usize,
    },
    Snooze {
        lease: usize,
        delay_ms: u64,
    },
    Extend {
        lease: usize,
        by_ms: u64,
    },
    Retry {
        task: usize,
    },
    Delete {
        task: usize,
    },
    Advance {
        ms: u64,
    },
    RequeueExpired,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            0..2usize,
            prop_oneof![Just(-1), 1..4i32],
            prop_oneof![Just(0), Just(0), Just(500), Just(2500)],
            prop_oneof![Just(1000), Just(3000)],
            prop_oneof![Just(0), Just(0), Just(-1), Just(2)],
            prop_oneof![Just(false), Just(false), Just(true)],
        )
            .prop_map(|(action, max_tries, delay_ms, timeout_ms, priority, keyed)| Op::Enqueue {
                action,
                max_tries,
                delay_ms,
                timeout_ms,
                priority,
                keyed,
            }),
        3 => any::<usize>().prop_map(|task| Op::Cancel { task }),
        1 => (0..2usize).prop_map(|action| Op::Pause { action }),
        1 => (0..2usize).prop_map(|action| Op::Resume { action }),
        5 => (0..2usize).prop_map(|action| Op::Claim { action }),
        2 => any::<usize>().prop_map(|lease| Op::Complete { lease }),
        2 => any::<usize>().prop_map(|lease| Op::Fail { lease }),
        1 => any::<usize>().prop_map(|lease| Op::FailPermanently { lease }),
        1 => any::<usize>().prop_map(|lease| Op::Release { lease }),
        1 => (any::<usize>(), prop_oneof![Just(0), Just(1500)])
            .prop_map(|(lease, delay_ms)| Op::Snooze { lease, delay_ms }),
        1 => (any::<usize>(), 1..8u64).prop_map(|(lease, halves)| Op::Extend { lease, by_ms: halves * 500 }),
        1 => any::<usize>().prop_map(|task| Op::Retry { task }),
        1 => any::<usize>().prop_map(|task| Op::Delete { task }),
        // Whole half-seconds, so that times often land exactly on a lease
        // end or a not-before time.
        4 => (0..12u64).prop_map(|halves| Op::Advance { ms: halves * 500 }),
        1 => Just(Op::RequeueExpired),
    ]
}

/// Microseconds since the Unix epoch.
fn micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

fn ms(ms: u64) -> i64 {
    ms as i64 * 1000
}

fn expect_lease_lost<T: std::fmt::Debug>(result: Result<T, Error>) {
    assert!(matches!(result, Err(Error::LeaseLost { .. })), "{result:?}");
}

/// Takes one of the leases in hand.
fn pick(leases: &mut Vec<Lease>, index: usize) -> Lease {
    leases.swap_remove(index % leases.len())
}

/// The queue under test, its model, and the leases in hand.
struct Harness {
    queue: Queue,
    clock: ManualClock,
    model: Model,
    leases: Vec<Lease>,
    /// Leases given up or lost, for stale workers to try.
    stale: Vec<LeaseRef>,
}

impl Harness {
    fn new(dir: &std::path::Path) -> Self {
        let backoff = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(4),
            jitter: 0.0,
        };
        let config = QueueConfig {
            backoff,
            ..QueueConfig::default()
        };
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let sqlite = SqliteConfig {
            clock: Clock::Manual(clock.clone()),
            ..SqliteConfig::default()
        };
        let backend = SqliteBackend::open_blocking(dir.join("model.db"), sqlite).unwrap();
        let queue = Queue::new(taskq::Queue::new(backend, config).unwrap()).unwrap();
        let model = Model {
            now: micros(clock.now()),
            backoff,
            expiry: ExpiryBackoff::from_backoff(&backoff),
            tasks: BTreeMap::new(),
            ever: Vec::new(),
            paused: [false; 2],
        };
        Harness {
            queue,
            clock,
            model,
            leases: Vec::new(),
            stale: Vec::new(),
        }
    }

    /// Applies one operation to the queue and the model, checking what the
    /// queue answered.
    fn apply(&mut self, op: Op) {
        let now = self.model.now;
        match op {
            Op::Enqueue { .. } => self.enqueue(now, op),
            Op::Claim { .. } => self.claim(now, op),
            Op::Complete { .. }
            | Op::Fail { .. }
            | Op::FailPermanently { .. }
            | Op::Release { .. }
            | Op::Snooze { .. }
            | Op::Extend { .. }
                if self.leases.is_empty() =>
            {
                // No lease in hand: a stale worker tries its old one.
                if let Some(old) = self.stale.last() {
                    expect_lease_lost(complete_stale(&self.queue, *old));
                }
            }
            Op::Complete { .. } => self.complete(op),
            Op::Fail { .. } => self.fail(now, op),
            Op::FailPermanently { .. } => self.fail_permanently(op),
            Op::Release { .. } | Op::Snooze { .. } => self.give_back(now, op),
            Op::Extend { .. } => self.extend(now, op),
            Op::Retry { .. } | Op::Delete { .. } | Op::Cancel { .. }
                if self.model.ever.is_empty() => {}
            Op::Cancel { .. } => self.cancel(op),
            Op::Pause { action } => {
                let changed = self.queue.pause(ACTIONS[action]).unwrap();
                assert_eq!(changed, !self.model.paused[action], "pause");
                self.model.paused[action] = true;
            }
            Op::Resume { action } => {
                let changed = self.queue.resume(ACTIONS[action]).unwrap();
                assert_eq!(changed, self.model.paused[action], "resume");
                self.model.paused[action] = false;
            }
            Op::Retry { .. } => self.retry(now, op),
            Op::Delete { .. } => self.delete(op),
            Op::Advance { ms: by } => {
                self.clock.advance(Duration::from_millis(by));
                self.model.now += ms(by);
            }
            Op::RequeueExpired => {
                let expected = self.model.expire(None);
                assert_eq!(self.queue.requeue_expired().unwrap(), expected, "expired");
            }
        }
    }

    fn enqueue(&mut self, now: i64, op: Op) {
        let Op::Enqueue {
            action,
            max_tries,
            delay_ms,
            timeout_ms,
            priority,
            keyed,
        } = op
        else {
            unreachable!()
        };
        let mut task = NewTask::json(ACTIONS[action], &now)
            .unwrap()
            .max_tries(max_tries)
            .delay(Duration::from_millis(delay_ms))
            .timeout(Duration::from_millis(timeout_ms))
            .priority(priority);
        if keyed {
            task = task.unique_key("k");
        }
        let enqueued = self.queue.enqueue_task(task).unwrap();
        let holder = keyed.then(|| self.model.key_holder(action)).flatten();
        assert_eq!(enqueued.duplicate, holder.is_some(), "duplicate");
        if let Some(holder) = holder {
            assert_eq!(enqueued.id, holder, "the holder of the key");
            return;
        }
        let id = enqueued.id;
        assert!(
            self.model.ever.last().is_none_or(|last| *last < id),
            "ids grow"
        );
        self.model.ever.push(id);
        let task = ModelTask {
            action,
            state: State::Queued,
            tries: 0,
            max_tries,
            token: 0,
            not_before: now + ms(delay_ms),
            expires: None,
            timeout: ms(timeout_ms),
            priority,
            keyed,
            cancel_requested: false,
        };
        self.model.tasks.insert(id, task);
    }

    fn claim(&mut self, now: i64, op: Op) {
        let Op::Claim { action } = op else {
            unreachable!()
        };
        self.model.expire(Some(action));
        let expected = self.model.next_claim(action);
        let lease = self.queue.claim(ACTIONS[action]).unwrap();
        assert_eq!(lease.as_ref().map(Lease::id), expected, "claim order");
        if let Some(lease) = lease {
            let task = self.model.tasks.get_mut(&lease.id()).unwrap();
            task.state = State::Running;
            task.tries += 1;
            assert!(lease.token() > task.token, "tokens grow");
            task.token = lease.token();
            task.expires = Some(now + task.timeout);
            assert_eq!(lease.task().tries, task.tries);
            self.leases.push(lease);
        }
    }

    fn complete(&mut self, op: Op) {
        let Op::Complete { lease } = op else {
            unreachable!()
        };
        let lease = pick(&mut self.leases, lease);
        let r = lease.lease_ref();
        self.stale.push(r);
        let result = lease.complete();
        if self.model.holds(r) {
            result.unwrap();
            self.model.tasks.remove(&r.id);
        } else {
            expect_lease_lost(result);
        }
    }

    fn fail(&mut self, now: i64, op: Op) {
        let Op::Fail { lease } = op else {
            unreachable!()
        };
        let lease = pick(&mut self.leases, lease);
        let r = lease.lease_ref();
        self.stale.push(r);
        let result = lease.fail("boom");
        if self.model.holds(r) {
            let task = self.model.tasks.get_mut(&r.id).unwrap();
            task.expires = None;
            if task.cancel_requested {
                assert_eq!(result.unwrap(), FailOutcome::Cancelled);
                task.state = State::Cancelled;
            } else if task.max_tries != -1 && task.tries >= task.max_tries {
                assert_eq!(result.unwrap(), FailOutcome::Failed);
                task.state = State::Failed;
            } else {
                let after = self.model.backoff.delay(task.tries);
                assert_eq!(result.unwrap(), FailOutcome::Retrying { after });
                task.state = State::Queued;
                task.not_before = now + after.as_micros() as i64;
            }
        } else {
            expect_lease_lost(result);
        }
    }

    fn fail_permanently(&mut self, op: Op) {
        let Op::FailPermanently { lease } = op else {
            unreachable!()
        };
        let lease = pick(&mut self.leases, lease);
        let r = lease.lease_ref();
        self.stale.push(r);
        let result = lease.fail_permanently("fatal");
        if self.model.holds(r) {
            result.unwrap();
            let task = self.model.tasks.get_mut(&r.id).unwrap();
            task.state = if task.cancel_requested {
                State::Cancelled
            } else {
                State::Failed
            };
            task.expires = None;
        } else {
            expect_lease_lost(result);
        }
    }

    fn give_back(&mut self, now: i64, op: Op) {
        let (Op::Release { lease: index } | Op::Snooze { lease: index, .. }) = op else {
            unreachable!()
        };
        let delay_ms = match op {
            Op::Snooze { delay_ms, .. } => delay_ms,
            _ => 0,
        };
        let lease = pick(&mut self.leases, index);
        let r = lease.lease_ref();
        self.stale.push(r);
        let result = if matches!(op, Op::Snooze { .. }) {
            lease.snooze(Duration::from_millis(delay_ms))
        } else {
            lease.release()
        };
        if self.model.holds(r) {
            result.unwrap();
            let task = self.model.tasks.get_mut(&r.id).unwrap();
            task.expires = None;
            if task.cancel_requested {
                task.state = State::Cancelled;
            } else {
                task.state = State::Queued;
                task.tries -= 1;
                if delay_ms > 0 {
                    task.not_before = now + ms(delay_ms);
                }
            }
        } else {
            expect_lease_lost(result);
        }
    }

    fn extend(&mut self, now: i64, op: Op) {
        let Op::Extend { lease, by_ms } = op else {
            unreachable!()
        };
        let index = lease % self.leases.len();
        let r = self.leases[index].lease_ref();
        let result = self.leases[index].extend(Duration::from_millis(by_ms));
        if self.model.holds(r) {
            let expires = now + ms(by_ms);
            assert_eq!(micros(result.unwrap()), expires);
            self.model.tasks.get_mut(&r.id).unwrap().expires = Some(expires);
        } else {
            expect_lease_lost(result);
            self.stale.push(self.leases.swap_remove(index).lease_ref());
        }
    }

    fn retry(&mut self, now: i64, op: Op) {
        let Op::Retry { task } = op else {
            unreachable!()
        };
        let id = self.model.ever[task % self.model.ever.len()];
        let result = self.queue.retry(id);
        match self.model.tasks.get_mut(&id) {
            None => assert!(
                matches!(result, Err(Error::TaskNotFound { .. })),
                "{result:?}"
            ),
            Some(t) if matches!(t.state, State::Failed | State::Cancelled) => {
                let (action, keyed) = (t.action, t.keyed);
                let holder = keyed.then(|| self.model.key_holder(action)).flatten();
                let t = self.model.tasks.get_mut(&id).unwrap();
                if let Some(holder) = holder {
                    assert!(
                        matches!(result, Err(Error::Duplicate { existing, .. }) if existing == holder),
                        "{result:?}"
                    );
                    return;
                }
                result.unwrap();
                t.state = State::Queued;
                t.tries = 0;
                t.not_before = now;
                t.cancel_requested = false;
            }
            Some(t) => assert!(
                matches!(result, Err(Error::WrongState { actual, .. }) if actual == t.state),
                "{result:?}"
            ),
        }
    }

    fn cancel(&mut self, op: Op) {
        let Op::Cancel { task } = op else {
            unreachable!()
        };
        let id = self.model.ever[task % self.model.ever.len()];
        let result = self.queue.cancel(id);
        match self.model.tasks.get_mut(&id) {
            None => assert!(
                matches!(result, Err(Error::TaskNotFound { .. })),
                "{result:?}"
            ),
            Some(t) => match t.state {
                State::Queued => {
                    assert_eq!(result.unwrap(), CancelOutcome::Cancelled);
                    t.state = State::Cancelled;
                }
                State::Running => {
                    assert_eq!(result.unwrap(), CancelOutcome::Requested);
                    t.cancel_requested = true;
                }
                finished => {
                    assert_eq!(result.unwrap(), CancelOutcome::AlreadyFinished(finished));
                }
            },
        }
    }

    fn delete(&mut self, op: Op) {
        let Op::Delete { task } = op else {
            unreachable!()
        };
        let id = self.model.ever[task % self.model.ever.len()];
        let result = self.queue.delete(id);
        if self.model.tasks.remove(&id).is_some() {
            result.unwrap();
        } else {
            assert!(
                matches!(result, Err(Error::TaskNotFound { .. })),
                "{result:?}"
            );
        }
    }
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::new(dir.path());
    for op in ops {
        harness.apply(op);
        check(&harness.queue, &harness.model);
    }
}

/// A completion with an old lease token, made straight on the backend as
/// a stale worker in another process would.
fn complete_stale(queue: &Queue, old: LeaseRef) -> Result<Vec<taskq::Enqueued>, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(
        queue
            .as_async()
            .backend()
            .task_complete(old, Vec::new(), false, None),
    )
}

fn check(queue: &Queue, model: &Model) {
    for (id, expected) in &model.tasks {
        let task = queue.get(*id).unwrap().expect("the model has it");
        assert_eq!(
            (
                task.state,
                task.tries,
                task.max_tries,
                task.lease_token,
                micros(task.not_before),
                task.expires.map(micros),
                task.priority,
                task.cancel_requested.is_some(),
            ),
            (
                expected.state,
                expected.tries,
                expected.max_tries,
                expected.token,
                expected.not_before,
                expected.expires,
                expected.priority,
                expected.cancel_requested,
            ),
            "task {id}"
        );
    }
    let mut counted: BTreeMap<(String, State), u64> = BTreeMap::new();
    for task in model.tasks.values() {
        *counted
            .entry((ACTIONS[task.action].to_string(), task.state))
            .or_default() += 1;
    }
    let mut reported = BTreeMap::new();
    for row in queue.stats().unwrap() {
        for state in State::ALL {
            if row.get(state) > 0 {
                reported.insert((row.action.clone(), state), row.get(state));
            }
        }
    }
    assert_eq!(reported, counted, "stats: no task lost or invented");
    for (index, action) in ACTIONS.iter().enumerate() {
        assert_eq!(
            queue.len(action).unwrap(),
            model.ready(index),
            "len of {action}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_queue_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops);
    }
}
