//! A model-based property test: random sequences of operations run against
//! a real SQLite queue and against a small in-memory model of the
//! lifecycle, and after every step the two must agree.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use taskq::blocking::{Lease, Queue};
use taskq::sqlite::SqliteBackend;
use taskq::{Backoff, Error, FailOutcome, LeaseRef, NewTask, QueueConfig, State, TaskId};

const ACTIONS: [&str; 2] = ["a", "b"];

#[derive(Clone, Debug)]
enum Op {
    Enqueue { action: usize, max_tries: i32 },
    Claim { action: usize },
    Complete { lease: usize },
    Fail { lease: usize },
    FailPermanently { lease: usize },
    Release { lease: usize },
    Retry { task: usize },
    Delete { task: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, prop_oneof![Just(-1), 1..4i32])
            .prop_map(|(action, max_tries)| Op::Enqueue { action, max_tries }),
        4 => (0..2usize).prop_map(|action| Op::Claim { action }),
        2 => any::<usize>().prop_map(|lease| Op::Complete { lease }),
        2 => any::<usize>().prop_map(|lease| Op::Fail { lease }),
        1 => any::<usize>().prop_map(|lease| Op::FailPermanently { lease }),
        1 => any::<usize>().prop_map(|lease| Op::Release { lease }),
        1 => any::<usize>().prop_map(|task| Op::Retry { task }),
        1 => any::<usize>().prop_map(|task| Op::Delete { task }),
    ]
}

#[derive(Clone, Debug, PartialEq)]
struct ModelTask {
    action: usize,
    state: State,
    tries: i32,
    max_tries: i32,
    token: i64,
    /// When it may run, as a step number: steps are strictly ordered in
    /// time because each one commits.
    not_before: u64,
}

#[derive(Default)]
struct Model {
    tasks: BTreeMap<TaskId, ModelTask>,
    ever: Vec<TaskId>,
}

impl Model {
    fn holds(&self, lease: LeaseRef) -> bool {
        self.tasks
            .get(&lease.id)
            .is_some_and(|t| t.state == State::Running && t.token == lease.token)
    }

    fn next_claim(&self, action: usize) -> Option<TaskId> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.action == action && t.state == State::Queued)
            .min_by_key(|(id, t)| (t.not_before, **id))
            .map(|(id, _)| *id)
    }
}

fn expect_lease_lost<T: std::fmt::Debug>(result: Result<T, Error>) {
    assert!(matches!(result, Err(Error::LeaseLost { .. })), "{result:?}");
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let config = QueueConfig {
        backoff: Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
        },
        ..QueueConfig::default()
    };
    let backend =
        SqliteBackend::open_blocking(dir.path().join("model.db"), Default::default()).unwrap();
    let queue = Queue::new(taskq::Queue::new(backend, config).unwrap()).unwrap();
    let mut model = Model::default();
    let mut leases: Vec<Lease> = Vec::new();
    let mut stale: Vec<LeaseRef> = Vec::new();

    for (step, op) in ops.into_iter().enumerate() {
        let step = step as u64;
        match op {
            Op::Enqueue { action, max_tries } => {
                let task = NewTask::json(ACTIONS[action], &step)
                    .unwrap()
                    .max_tries(max_tries);
                let id = queue.enqueue_task(task).unwrap();
                assert!(model.ever.last().is_none_or(|last| *last < id), "ids grow");
                model.ever.push(id);
                let task = ModelTask {
                    action,
                    state: State::Queued,
                    tries: 0,
                    max_tries,
                    token: 0,
                    not_before: step,
                };
                model.tasks.insert(id, task);
            }
            Op::Claim { action } => {
                let expected = model.next_claim(action);
                let lease = queue.claim(ACTIONS[action]).unwrap();
                assert_eq!(lease.as_ref().map(Lease::id), expected, "claim order");
                if let Some(lease) = lease {
                    let task = model.tasks.get_mut(&lease.id()).unwrap();
                    task.state = State::Running;
                    task.tries += 1;
                    assert!(lease.token() > task.token, "tokens grow");
                    task.token = lease.token();
                    assert_eq!(lease.task().tries, task.tries);
                    leases.push(lease);
                }
            }
            Op::Complete { .. }
            | Op::Fail { .. }
            | Op::FailPermanently { .. }
            | Op::Release { .. }
                if leases.is_empty() =>
            {
                // No lease in hand: a stale worker tries its old one.
                if let Some(old) = stale.last() {
                    expect_lease_lost(complete_stale(&queue, *old));
                }
            }
            Op::Complete { lease } => {
                let lease = leases.swap_remove(lease % leases.len());
                let held = model.holds(lease.lease_ref());
                stale.push(lease.lease_ref());
                let result = lease.complete();
                if held {
                    result.unwrap();
                    model.tasks.remove(&stale[stale.len() - 1].id);
                } else {
                    expect_lease_lost(result);
                }
            }
            Op::Fail { lease } => {
                let lease = leases.swap_remove(lease % leases.len());
                let r = lease.lease_ref();
                stale.push(r);
                let result = lease.fail("boom");
                if model.holds(r) {
                    let task = model.tasks.get_mut(&r.id).unwrap();
                    if task.max_tries != -1 && task.tries >= task.max_tries {
                        assert_eq!(result.unwrap(), FailOutcome::Failed);
                        task.state = State::Failed;
                    } else {
                        assert!(matches!(result.unwrap(), FailOutcome::Retrying { .. }));
                        task.state = State::Queued;
                        task.not_before = step;
                    }
                } else {
                    expect_lease_lost(result);
                }
            }
            Op::FailPermanently { lease } => {
                let lease = leases.swap_remove(lease % leases.len());
                let r = lease.lease_ref();
                stale.push(r);
                let result = lease.fail_permanently("fatal");
                if model.holds(r) {
                    result.unwrap();
                    model.tasks.get_mut(&r.id).unwrap().state = State::Failed;
                } else {
                    expect_lease_lost(result);
                }
            }
            Op::Release { lease } => {
                let lease = leases.swap_remove(lease % leases.len());
                let r = lease.lease_ref();
                stale.push(r);
                let result = lease.release();
                if model.holds(r) {
                    result.unwrap();
                    let task = model.tasks.get_mut(&r.id).unwrap();
                    task.state = State::Queued;
                    task.tries -= 1;
                } else {
                    expect_lease_lost(result);
                }
            }
            Op::Retry { .. } | Op::Delete { .. } if model.ever.is_empty() => {}
            Op::Retry { task } => {
                let id = model.ever[task % model.ever.len()];
                let result = queue.retry(id);
                match model.tasks.get_mut(&id) {
                    None => assert!(
                        matches!(result, Err(Error::TaskNotFound { .. })),
                        "{result:?}"
                    ),
                    Some(t) if t.state == State::Failed => {
                        result.unwrap();
                        t.state = State::Queued;
                        t.tries = 0;
                        t.not_before = step;
                    }
                    Some(t) => assert!(
                        matches!(result, Err(Error::WrongState { actual, .. }) if actual == t.state),
                        "{result:?}"
                    ),
                }
            }
            Op::Delete { task } => {
                let id = model.ever[task % model.ever.len()];
                let result = queue.delete(id);
                if model.tasks.remove(&id).is_some() {
                    result.unwrap();
                } else {
                    assert!(
                        matches!(result, Err(Error::TaskNotFound { .. })),
                        "{result:?}"
                    );
                }
            }
        }
        check(&queue, &model);
    }
}

/// A completion with an old lease token, made straight on the backend as
/// a stale worker in another process would.
fn complete_stale(queue: &Queue, old: LeaseRef) -> Result<Vec<TaskId>, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(
        queue
            .as_async()
            .backend()
            .task_complete(old, Vec::new(), false),
    )
}

fn check(queue: &Queue, model: &Model) {
    for (id, expected) in &model.tasks {
        let task = queue.get(*id).unwrap().expect("the model has it");
        assert_eq!(
            (task.state, task.tries, task.max_tries, task.lease_token),
            (
                expected.state,
                expected.tries,
                expected.max_tries,
                expected.token
            ),
            "task {id}"
        );
    }
    let stats = queue.stats().unwrap();
    let total: u64 = stats.iter().map(|s| s.total()).sum();
    assert_eq!(total, model.tasks.len() as u64, "no task lost or invented");
    for (index, action) in ACTIONS.iter().enumerate() {
        let ready = model
            .tasks
            .values()
            .filter(|t| t.action == index && t.state == State::Queued)
            .count();
        assert_eq!(queue.len(action).unwrap(), ready as u64, "len of {action}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_queue_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops);
    }
}
