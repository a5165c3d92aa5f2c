//! Dependencies between tasks: waiting, release by the last dependency,
//! the failure policy and its cascade, results passed along, fan-in under
//! concurrent completions, retry with dependents, deletion and purging.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskq::worker::{Outcome, TaskContext, Worker, WorkerConfig};
use taskq::{Dependency, NewTask, State, TaskId, Workflow};

use super::TestDb;

/// A worker whose handlers record the order they ran in, and return their
/// payload with the results of their dependencies as their result.
fn recording_worker(
    queue: &taskq::Queue,
    actions: &[&'static str],
) -> (Worker, Arc<Mutex<Vec<String>>>) {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let mut worker = Worker::new(queue.clone(), WorkerConfig::default());
    for action in actions {
        let ran = Arc::clone(&ran);
        worker
            .handle(action, move |name: String, ctx: TaskContext| {
                let ran = Arc::clone(&ran);
                async move {
                    let mut seen = Vec::new();
                    for dependency in ctx.dependencies().await.map_err(|e| e.to_string())? {
                        let result: Option<String> = ctx
                            .result_of(dependency.id)
                            .await
                            .map_err(|e| e.to_string())?;
                        seen.push(result.unwrap_or_default());
                    }
                    seen.sort();
                    ran.lock().unwrap().push(name.clone());
                    if name.starts_with("fail") {
                        return Ok(Outcome::fail("told to fail"));
                    }
                    let result = format!("{name}({})", seen.join(","));
                    Outcome::complete_with_result(&result).map_err(|e| e.to_string())
                }
            })
            .unwrap();
    }
    (worker, ran)
}

fn task(name: &str) -> NewTask {
    NewTask::json("step", &name).unwrap()
}

/// A → B, C → D: D waits for both, runs once after both, and reads their
/// results, which read A's.
pub async fn a_diamond_runs_its_sink_once_after_both_branches(db: &dyn TestDb) {
    let queue = db.queue().await;
    let mut flow = Workflow::new();
    flow.add("a", task("a"), &[]).unwrap();
    flow.add("b", task("b"), &["a"]).unwrap();
    flow.add("c", task("c"), &["a"]).unwrap();
    flow.add("d", task("d"), &["b", "c"]).unwrap();
    let ids = queue.enqueue_workflow(flow).await.unwrap();
    let d = ids.id("d").unwrap();
    let waiting = queue.get(d).await.unwrap().unwrap();
    assert_eq!((waiting.state, waiting.waiting_on), (State::Waiting, 2));
    assert_eq!(queue.len("step").await.unwrap(), 1, "only a is ready");
    let stats = super::reported_stats(&queue).await;
    assert_eq!(stats.get(&("step".to_owned(), State::Waiting)), Some(&3));

    let (worker, ran) = recording_worker(&queue, &["step"]);
    taskq::testing::drain(&worker).await.unwrap();
    let ran = ran.lock().unwrap().clone();
    assert_eq!(ran.len(), 4, "each ran once: {ran:?}");
    assert_eq!(ran[0], "a");
    assert_eq!(ran[3], "d", "the sink ran last: {ran:?}");
    let sink = queue.get(d).await.unwrap().unwrap();
    assert_eq!(sink.state, State::Succeeded);
    let result: Option<String> = sink.result_json().unwrap();
    assert_eq!(result.as_deref(), Some("d(b(a()),c(a()))"));
    let links = queue.links(d).await.unwrap();
    let outcomes: Vec<_> = links.dependencies.iter().map(|l| l.outcome).collect();
    assert_eq!(outcomes, vec![Some(State::Succeeded); 2]);
    let a = queue.links(ids.id("a").unwrap()).await.unwrap();
    assert_eq!(a.dependents.len(), 2);
}

/// A failed dependency cancels its waiting dependents, down the graph,
/// naming it; a dependent that runs anyway runs and sees the failure;
/// retry with dependents makes the cancelled ones wait again.
pub async fn a_failed_dependency_cancels_the_subtree_unless_it_runs_anyway(db: &dyn TestDb) {
    let queue = db.queue().await;
    let mut flow = Workflow::new();
    flow.add("root", task("fail-root"), &[]).unwrap();
    flow.add("child", task("child"), &["root"]).unwrap();
    flow.add("grandchild", task("grandchild"), &["child"])
        .unwrap();
    flow.add(
        "cleanup",
        task("cleanup").run_if_dependencies_fail(),
        &["root"],
    )
    .unwrap();
    let ids = queue.enqueue_workflow(flow).await.unwrap();
    let (worker, ran) = recording_worker(&queue, &["step"]);
    taskq::testing::drain(&worker).await.unwrap();
    assert_eq!(*ran.lock().unwrap(), vec!["fail-root", "cleanup"]);

    let child = queue.get(ids.id("child").unwrap()).await.unwrap().unwrap();
    assert_eq!(child.state, State::Cancelled);
    let root = ids.id("root").unwrap();
    assert_eq!(
        child.last_error.as_deref(),
        Some(format!("cancelled: its dependency {root} failed").as_str())
    );
    let grandchild = ids.id("grandchild").unwrap();
    let cascaded = queue.get(grandchild).await.unwrap().unwrap();
    assert_eq!(cascaded.state, State::Cancelled);
    assert!(cascaded.last_error.unwrap().contains("was cancelled"));
    let cleanup = queue.links(ids.id("cleanup").unwrap()).await.unwrap();
    assert_eq!(cleanup.dependencies[0].outcome, Some(State::Failed));

    // The root's retry takes its cancelled subtree with it.
    queue.retry_with_dependents(root).await.unwrap();
    let again = queue.get(grandchild).await.unwrap().unwrap();
    assert_eq!((again.state, again.waiting_on), (State::Waiting, 1));
    let child = queue.get(ids.id("child").unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (child.state, child.waiting_on, child.tries),
        (State::Waiting, 1, 0)
    );
    // The root fails again: the subtree is cancelled again, once.
    taskq::testing::drain(&worker).await.unwrap();
    assert_eq!(
        ran.lock().unwrap().len(),
        3,
        "cleanup had finished: it stays"
    );
    assert_eq!(
        queue.get(grandchild).await.unwrap().unwrap().state,
        State::Cancelled
    );
}

/// Dependencies on tasks that already exist: running (waits), gone
/// (counts as succeeded), failed (cancelled at once, or queued when it
/// runs anyway); a batch may point only backwards; bad ids are refused.
pub async fn dependencies_on_existing_tasks_start_from_their_states(db: &dyn TestDb) {
    let queue = db.queue_with(super::no_backoff()).await;
    let running = queue.enqueue("step", &"running").await.unwrap();
    let failed = queue
        .enqueue_with(
            "step",
            &"failed",
            taskq::EnqueueOptions {
                max_tries: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let gone = queue.enqueue("step", &"gone").await.unwrap();
    let lease = queue.claim("step").await.unwrap().unwrap();
    assert_eq!(lease.id(), running);
    let second = queue.claim("step").await.unwrap().unwrap();
    second.fail("broken").await.unwrap();
    queue
        .claim("step")
        .await
        .unwrap()
        .unwrap()
        .complete()
        .await
        .unwrap();
    assert_eq!(
        queue.get(failed).await.unwrap().unwrap().state,
        State::Failed
    );

    let waits = queue
        .enqueue_many(vec![task("w").depends_on([running, gone])])
        .await
        .unwrap()[0]
        .id;
    let cancelled = queue
        .enqueue_many(vec![task("x").depends_on([failed])])
        .await
        .unwrap()[0]
        .id;
    let anyway = queue
        .enqueue_many(vec![task("y")
            .depends_on([failed, gone])
            .run_if_dependencies_fail()])
        .await
        .unwrap()[0]
        .id;
    let w = queue.get(waits).await.unwrap().unwrap();
    assert_eq!((w.state, w.waiting_on), (State::Waiting, 1));
    let x = queue.get(cancelled).await.unwrap().unwrap();
    assert_eq!(x.state, State::Cancelled);
    assert_eq!(
        x.last_error.as_deref(),
        Some(format!("cancelled: its dependency {failed} failed").as_str())
    );
    assert_eq!(
        queue.get(anyway).await.unwrap().unwrap().state,
        State::Queued
    );

    lease.complete().await.unwrap();
    let w = queue.get(waits).await.unwrap().unwrap();
    assert_eq!(
        (w.state, w.waiting_on),
        (State::Queued, 0),
        "released by the completion"
    );

    let mut forward = task("z");
    forward.options.depends_on.push(Dependency::Earlier(1));
    let refused = queue.enqueue_many(vec![forward, task("later")]).await;
    assert!(matches!(
        refused,
        Err(taskq::Error::InvalidInput {
            field: "depends_on",
            ..
        })
    ));
    let refused = queue
        .enqueue_many(vec![task("bad").depends_on([TaskId(0)])])
        .await;
    assert!(matches!(
        refused,
        Err(taskq::Error::InvalidInput {
            field: "depends_on",
            ..
        })
    ));
    assert!(queue.get(TaskId(gone.0 + 100)).await.unwrap().is_none());
}

/// A fan-in of 1,000 dependencies completed by 8 workers on two queues
/// (their own connections) releases the sink exactly once, when the last
/// one succeeds.
pub async fn a_fan_in_of_a_thousand_is_released_exactly_once(db: &dyn TestDb) {
    const SOURCES: usize = 1000;
    const WORKERS: usize = 8;
    let producer = db.queue().await;
    let mut flow = Workflow::new();
    let mut names = Vec::new();
    for i in 0..SOURCES {
        let name = format!("source-{i}");
        flow.add(&name, NewTask::json("source", &i).unwrap(), &[])
            .unwrap();
        names.push(name);
    }
    let after: Vec<&str> = names.iter().map(String::as_str).collect();
    flow.add("sink", NewTask::json("sink", &0).unwrap(), &after)
        .unwrap();
    let ids = producer.enqueue_workflow(flow).await.unwrap();
    let sink = ids.id("sink").unwrap();
    assert_eq!(
        producer.get(sink).await.unwrap().unwrap().waiting_on,
        SOURCES as i32
    );

    let other = db.queue().await;
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let queue = if w % 2 == 0 {
            producer.clone()
        } else {
            other.clone()
        };
        workers.push(tokio::spawn(async move {
            let mut done = 0;
            while let Some(lease) = queue.claim("source").await.unwrap() {
                lease.complete().await.unwrap();
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    assert_eq!(total, SOURCES);
    let released = producer.get(sink).await.unwrap().unwrap();
    assert_eq!((released.state, released.waiting_on), (State::Queued, 0));
    let lease = producer
        .claim("sink")
        .await
        .unwrap()
        .expect("released once");
    assert_eq!(lease.id(), sink);
    assert!(
        producer.claim("sink").await.unwrap().is_none(),
        "and only once"
    );
    let links = producer.links(sink).await.unwrap();
    assert_eq!(links.dependencies.len(), SOURCES);
    let ended: HashSet<_> = links
        .dependencies
        .iter()
        .map(|l| (l.state, l.outcome))
        .collect();
    assert_eq!(ended, HashSet::from([(None, Some(State::Succeeded))]));
    lease.complete().await.unwrap();
    assert!(
        producer.links(sink).await.unwrap().dependencies.is_empty(),
        "a deleted dependent takes its edges with it"
    );
}

/// A dependency deleted before it finished cancels its dependents (it was
/// not completed); one whose lease expires on its last try fails them; a
/// cancelled one cancels them; purging keeps a succeeded dependency
/// while a dependent still waits for its result.
pub async fn ends_other_than_completion_settle_dependents(db: &dyn TestDb) {
    let queue = db.queue_with(super::no_backoff()).await;
    let deleted = queue.enqueue("step", &"deleted").await.unwrap();
    let lease = queue.claim("step").await.unwrap().unwrap();
    let cancelled = queue.enqueue("step", &"cancelled").await.unwrap();
    let kept = queue.enqueue("keep", &"kept").await.unwrap();
    let on_deleted = queue
        .enqueue_many(vec![task("a").depends_on([deleted])])
        .await
        .unwrap()[0]
        .id;
    let on_cancelled = queue
        .enqueue_many(vec![task("b").depends_on([cancelled])])
        .await
        .unwrap()[0]
        .id;
    let on_kept = queue
        .enqueue_many(vec![task("c")
            .depends_on([kept, deleted])
            .run_if_dependencies_fail()])
        .await
        .unwrap()[0]
        .id;

    queue.delete(deleted).await.unwrap();
    assert!(matches!(
        lease.complete().await,
        Err(taskq::Error::LeaseLost { .. })
    ));
    let a = queue.get(on_deleted).await.unwrap().unwrap();
    assert_eq!(a.state, State::Cancelled);
    queue.cancel(cancelled).await.unwrap();
    assert_eq!(
        queue.get(on_cancelled).await.unwrap().unwrap().state,
        State::Cancelled
    );

    let lease = queue.claim("keep").await.unwrap().unwrap();
    lease
        .complete_with_result(taskq::TaskResult::json(&"thumb").unwrap(), Vec::new())
        .await
        .unwrap();
    let c = queue.get(on_kept).await.unwrap().unwrap();
    assert_eq!(c.state, State::Queued, "runs anyway once both ended");
    assert_eq!(
        queue.purge(State::Succeeded, Duration::ZERO).await.unwrap(),
        0,
        "its dependent has not run yet"
    );
    queue
        .claim("step")
        .await
        .unwrap()
        .unwrap()
        .complete()
        .await
        .unwrap();
    assert_eq!(
        queue.purge(State::Succeeded, Duration::ZERO).await.unwrap(),
        1
    );
    let stats = super::reported_stats(&queue).await;
    let waiting: u64 = stats
        .iter()
        .filter(|((_, state), _)| *state == State::Waiting)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(waiting, 0, "stats: {stats:?}");
}

/// A worker that dies while its dependency runs (its completion never
/// commits) leaves the dependent waiting, and the dependency runs again
/// once its lease expires; that run's completion releases the dependent.
/// Nothing is lost between the two.
pub async fn a_dependency_whose_worker_died_runs_again_then_releases(db: &dyn TestDb) {
    let queue = db.queue_with(super::no_backoff()).await;
    let mut flow = Workflow::new();
    flow.add("first", task("first").timeout(super::SHORT_LEASE), &[])
        .unwrap();
    flow.add("then", task("then"), &["first"]).unwrap();
    let ids = queue.enqueue_workflow(flow).await.unwrap();
    let dead = queue.claim("step").await.unwrap().unwrap();
    super::outlive_short_lease().await;
    let then = ids.id("then").unwrap();
    assert_eq!(
        queue.get(then).await.unwrap().unwrap().state,
        State::Waiting
    );
    let again = queue.claim("step").await.unwrap().expect("runs again");
    assert_eq!(
        (again.id(), again.task().tries),
        (ids.id("first").unwrap(), 2)
    );
    assert!(
        dead.complete().await.is_err(),
        "the dead worker's lease is gone"
    );
    assert_eq!(
        queue.get(then).await.unwrap().unwrap().state,
        State::Waiting
    );
    again.complete().await.unwrap();
    assert_eq!(queue.get(then).await.unwrap().unwrap().state, State::Queued);
}

/// A chain of 60 tasks, each waiting for the one before: the failure of
/// the first cancels every other one, down the chain, in its transaction.
pub async fn a_cancellation_cascades_down_a_long_chain(db: &dyn TestDb) {
    const LENGTH: usize = 60;
    let queue = db.queue().await;
    let mut tasks = vec![task("fail-0").max_tries(1)];
    for at in 1..LENGTH {
        let mut next = task(&format!("link-{at}"));
        next.options.depends_on.push(Dependency::Earlier(at - 1));
        tasks.push(next);
    }
    let ids = queue.enqueue_many(tasks).await.unwrap();
    let lease = queue.claim("step").await.unwrap().unwrap();
    lease.fail("broken").await.unwrap();
    let stats = super::reported_stats(&queue).await;
    assert_eq!(
        stats.get(&("step".to_owned(), State::Cancelled)),
        Some(&(LENGTH as u64 - 1)),
        "{stats:?}"
    );
    let last = queue.get(ids[LENGTH - 1].id).await.unwrap().unwrap();
    assert_eq!(
        last.last_error.as_deref(),
        Some(
            format!(
                "cancelled: its dependency {} was cancelled",
                ids[LENGTH - 2].id
            )
            .as_str()
        )
    );
}
