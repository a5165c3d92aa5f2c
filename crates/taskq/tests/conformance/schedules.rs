//! Periodic tasks: declaring, pausing, removing and running schedules,
//! each tick enqueued once however many queues look, missed ticks, and
//! workers that enqueue ticks on their own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use taskq::worker::{TaskContext, Worker};
use taskq::{EnqueueOptions, Error, ListOptions, Missed, Queue, Schedule, State, Upserted};

use super::worker::config;
use super::TestDb;

const MINUTE: Duration = Duration::from_secs(60);

pub async fn declaring_a_schedule_again_changes_nothing_and_a_new_timing_moves_its_next_tick(
    db: &impl TestDb,
) {
    let queue = db.queue().await;
    let schedules = queue.schedules();
    let before = SystemTime::now();
    let every = Schedule::every("report", "report", MINUTE);
    assert_eq!(
        schedules.upsert(every.clone()).await.unwrap(),
        Upserted::Created
    );
    assert_eq!(
        schedules.upsert(every.clone()).await.unwrap(),
        Upserted::Unchanged
    );
    let first = schedules.get("report").await.unwrap().unwrap();
    assert_eq!(first.schedule, every);
    assert!(!first.paused);
    assert_eq!((first.last_at, first.last_task), (None, None));
    let off = first.next_at.duration_since(before).unwrap();
    assert!(
        off >= MINUTE && off < MINUTE + Duration::from_secs(10),
        "{off:?}"
    );

    // Another payload or other options change the schedule, not its tick.
    let options = EnqueueOptions {
        priority: 3,
        max_tries: 2,
        ..EnqueueOptions::default()
    };
    let changed = every
        .clone()
        .payload_json(&"full")
        .unwrap()
        .options(options);
    assert_eq!(
        schedules.upsert(changed.clone()).await.unwrap(),
        Upserted::Changed
    );
    let second = schedules.get("report").await.unwrap().unwrap();
    assert_eq!(second.schedule, changed);
    assert_eq!(second.next_at, first.next_at, "the next tick stays");

    // A paused schedule stays paused when declared again.
    assert!(schedules.pause("report").await.unwrap());
    let cron = Schedule::cron("report", "report", "0 3 * * *").in_zone("Europe/Berlin");
    assert_eq!(
        schedules.upsert(cron.clone()).await.unwrap(),
        Upserted::Changed
    );
    let third = schedules.get("report").await.unwrap().unwrap();
    assert!(third.paused, "declaring does not resume");
    assert_ne!(
        third.next_at, first.next_at,
        "a new timing has a new next tick"
    );
    assert!(
        third.next_at > before && third.next_at <= before + Duration::from_secs(86_400 + 3_600)
    );
    assert_eq!(schedules.list().await.unwrap(), vec![third]);
}

pub async fn concurrent_declarations_create_one_schedule(db: &impl TestDb) {
    let schedule = Schedule::cron("hourly", "roll", "@hourly").in_zone("Asia/Tokyo");
    let mut declared = Vec::new();
    for _ in 0..8 {
        let (queue, schedule) = (db.queue().await, schedule.clone());
        declared.push(tokio::spawn(async move {
            queue.schedules().upsert(schedule).await
        }));
    }
    let mut created = 0;
    for declaration in declared {
        match declaration.await.unwrap().unwrap() {
            Upserted::Created => created += 1,
            Upserted::Unchanged => {}
            Upserted::Changed => panic!("the same schedule changed"),
        }
    }
    assert_eq!(created, 1);
    let listed = db.queue().await.schedules().list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].schedule, schedule);
}

pub async fn bad_schedules_and_unknown_names_are_refused(db: &impl TestDb) {
    let queue = db.queue().await;
    let schedules = queue.schedules();
    let bad = [
        Schedule::cron("s", "a", "61 * * * *"),
        Schedule::cron("s", "a", "* * * * *").in_zone("Mars/Olympus"),
        Schedule::every("s", "a", Duration::from_millis(10)),
        Schedule::every("", "a", MINUTE),
        Schedule::every("s", "bad\naction", MINUTE),
    ];
    for schedule in bad {
        let result = schedules.upsert(schedule.clone()).await;
        assert!(
            matches!(result, Err(Error::InvalidInput { .. })),
            "{schedule:?}: {result:?}"
        );
    }
    assert!(schedules.list().await.unwrap().is_empty());
    let missing = |result: Result<_, Error>| matches!(result, Err(Error::ScheduleNotFound { name }) if name == "nope");
    assert!(missing(schedules.remove("nope").await));
    assert!(missing(schedules.pause("nope").await.map(drop)));
    assert!(missing(schedules.resume("nope").await.map(drop)));
    assert!(missing(schedules.run_now("nope").await.map(drop)));
    assert_eq!(schedules.get("nope").await.unwrap(), None);
}

pub async fn a_paused_schedule_enqueues_nothing_and_a_removed_one_is_gone(db: &impl TestDb) {
    let queue = db.queue().await;
    let schedules = queue.schedules();
    schedules
        .upsert(Schedule::every("beat", "beat", MINUTE))
        .await
        .unwrap();
    assert!(schedules.pause("beat").await.unwrap());
    assert!(!schedules.pause("beat").await.unwrap(), "already paused");
    db.age_schedule("beat", MINUTE + Duration::from_secs(1))
        .await;
    let ticked = schedules.tick().await.unwrap();
    assert_eq!((ticked.enqueued, ticked.next_in), (0, None), "paused");
    assert_eq!(queue.len("beat").await.unwrap(), 0);

    assert!(schedules.resume("beat").await.unwrap());
    assert!(!schedules.resume("beat").await.unwrap(), "already running");
    assert_eq!(schedules.tick().await.unwrap().enqueued, 1);
    schedules.remove("beat").await.unwrap();
    assert!(schedules.list().await.unwrap().is_empty());
    assert_eq!(queue.len("beat").await.unwrap(), 1, "its task stays");
    assert_eq!(schedules.tick().await.unwrap(), taskq::Ticked::default());
}

pub async fn run_now_enqueues_at_once_and_leaves_the_ticks_alone(db: &impl TestDb) {
    let queue = db.queue().await;
    let schedules = queue.schedules();
    let schedule = Schedule::cron("nightly", "clean", "0 3 * * *")
        .payload_json(&"all")
        .unwrap();
    schedules.upsert(schedule).await.unwrap();
    let before = schedules.get("nightly").await.unwrap().unwrap();
    assert!(schedules.pause("nightly").await.unwrap());
    let enqueued = schedules.run_now("nightly").await.unwrap();
    let lease = queue.claim("clean").await.unwrap().expect("ready at once");
    assert_eq!(lease.id(), enqueued.id);
    assert_eq!(lease.payload_json::<String>().unwrap(), "all");
    let after = schedules.get("nightly").await.unwrap().unwrap();
    assert_eq!(after.next_at, before.next_at);
    assert_eq!(after.last_at, None, "run-now is not a tick");
}

pub async fn each_due_tick_is_enqueued_once_however_many_queues_tick(db: &impl TestDb) {
    let mut queues = Vec::new();
    for _ in 0..4 {
        queues.push(db.queue().await);
    }
    let schedules = queues[0].schedules();
    let options = EnqueueOptions {
        priority: 7,
        ..EnqueueOptions::default()
    };
    let schedule = Schedule::every("beat", "beat", MINUTE).options(options);
    schedules.upsert(schedule).await.unwrap();
    db.age_schedule("beat", MINUTE + Duration::from_secs(1))
        .await;
    let due = schedules.get("beat").await.unwrap().unwrap().next_at;
    assert!(due < SystemTime::now());

    let ticks: Vec<_> = queues
        .iter()
        .cycle()
        .take(16)
        .map(|queue| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.schedules().tick().await.unwrap() })
        })
        .collect();
    let mut ticked = Vec::new();
    for tick in ticks {
        ticked.push(tick.await.unwrap());
    }
    let enqueued: u64 = ticked.iter().map(|t| t.enqueued).sum();
    assert_eq!(enqueued, 1, "one task for one tick: {ticked:?}");

    let tasks = queues[0].list(&ListOptions::default()).await.unwrap();
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!(task.not_before, due, "the task carries its tick's time");
    assert_eq!((task.priority, task.state), (7, State::Queued));
    let after = schedules.get("beat").await.unwrap().unwrap();
    assert_eq!(after.next_at, due + MINUTE);
    assert_eq!((after.last_at, after.last_task), (Some(due), Some(task.id)));
}

pub async fn missed_ticks_follow_the_schedules_policy(db: &impl TestDb) {
    let queue = db.queue().await;
    let schedules = queue.schedules();
    schedules
        .upsert(Schedule::every("once", "once", MINUTE))
        .await
        .unwrap();
    let skip = Schedule::every("skip", "skip", MINUTE).missed(Missed::Skip);
    schedules.upsert(skip).await.unwrap();
    // As if the fleet had been stopped for ten minutes: nine ticks are
    // past their grace of a minute, the tenth is due now.
    for name in ["once", "skip"] {
        db.age_schedule(name, 10 * MINUTE).await;
    }
    let (once_due, skip_due) = (next_at(&queue, "once").await, next_at(&queue, "skip").await);
    let ticked = schedules.tick().await.unwrap();
    assert_eq!((ticked.enqueued, ticked.missed), (3, 2));

    // The latest missed tick, and the one due now.
    let once = vec![once_due + 8 * MINUTE, once_due + 9 * MINUTE];
    assert_eq!(not_before(&queue, "once").await, once, "run-once");
    let skip = vec![skip_due + 9 * MINUTE];
    assert_eq!(not_before(&queue, "skip").await, skip, "skip");
    assert_eq!(next_at(&queue, "once").await, once_due + 10 * MINUTE);
    assert_eq!(next_at(&queue, "skip").await, skip_due + 10 * MINUTE);
    assert_eq!(
        schedules.tick().await.unwrap().enqueued,
        0,
        "nothing is due twice"
    );
}

/// The stored next tick of the schedule `name`.
async fn next_at(queue: &Queue, name: &str) -> SystemTime {
    let info = queue.schedules().get(name).await.unwrap().unwrap();
    info.next_at
}

/// The times the tasks of `action` are due at, oldest first.
async fn not_before(queue: &Queue, action: &str) -> Vec<SystemTime> {
    let filter = ListOptions {
        action: Some(action.to_owned()),
        ..ListOptions::default()
    };
    let tasks = queue.list(&filter).await.unwrap();
    let mut times: Vec<_> = tasks.into_iter().map(|t| t.not_before).collect();
    times.sort();
    times
}

/// Four workers, each with its own queue, all declaring one schedule that
/// ticks every second: each tick is run once.
pub async fn workers_run_each_tick_of_a_schedule_once(db: &impl TestDb) {
    let beat = Schedule::every("beat", "beat", Duration::from_secs(1));
    let queue = db.queue().await;
    queue.schedules().upsert(beat.clone()).await.unwrap();
    let first = queue
        .schedules()
        .get("beat")
        .await
        .unwrap()
        .unwrap()
        .next_at;
    let runs = Arc::new(Mutex::new(Vec::new()));
    let stop = taskq::worker::CancellationToken::new();
    let mut handles = Vec::new();
    for _ in 0..4 {
        let mut worker = Worker::new(db.queue().await, config(2));
        worker.schedule(beat.clone()).unwrap();
        let runs = Arc::clone(&runs);
        worker
            .handle("beat", move |(): (), ctx: TaskContext| {
                let runs = Arc::clone(&runs);
                async move {
                    runs.lock().unwrap().push(ctx.task().not_before);
                    Ok::<_, String>(())
                }
            })
            .unwrap();
        handles.push(tokio::spawn(
            worker.run_until(stop.clone().cancelled_owned()),
        ));
    }
    // Stop between the third tick and the fourth, once the third has run.
    let stop_at = first + Duration::from_millis(2_500);
    let wait = stop_at
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(wait).await;
    stop.cancel();
    for handle in handles {
        handle.await.unwrap().unwrap();
    }
    let mut runs = runs.lock().unwrap().clone();
    runs.sort();
    let expected: Vec<_> = (0..3).map(|n| first + n * Duration::from_secs(1)).collect();
    assert_eq!(runs, expected, "three ticks, each run once");
}
