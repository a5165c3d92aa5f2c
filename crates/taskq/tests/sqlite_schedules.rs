//! Schedules across daylight-saving changes, SQLite only: a manual clock
//! walks a queue through the nights when Berlin's clocks go forward and
//! back, and the tasks the ticks enqueued are read back from the file.

use std::time::{Duration, SystemTime};

use taskq::sqlite::{SqliteBackend, SqliteConfig};
use taskq::{Clock, ListOptions, ManualClock, Queue, QueueConfig, Schedule};

/// A UTC time written as RFC 3339, read by jiff (which taskq builds).
fn utc(text: &str) -> SystemTime {
    let timestamp: jiff::Timestamp = text.parse().unwrap();
    SystemTime::from(timestamp)
}

/// The not-before times of the tasks of `action`, oldest first, in UTC.
async fn ticks(queue: &Queue, action: &str) -> Vec<String> {
    let filter = ListOptions {
        action: Some(action.to_owned()),
        limit: 1000,
        ..ListOptions::default()
    };
    let mut times: Vec<SystemTime> = queue
        .list(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.not_before)
        .collect();
    times.sort();
    times
        .into_iter()
        .map(|t| jiff::Timestamp::try_from(t).unwrap().to_string())
        .collect()
}

/// A queue on a fresh file whose clock is `clock`, with a daily schedule
/// at 02:30 and an hourly one, both in Berlin, declared at the clock's time.
async fn berlin_queue(dir: &tempfile::TempDir, clock: &ManualClock) -> Queue {
    let config = SqliteConfig {
        clock: Clock::Manual(clock.clone()),
        ..SqliteConfig::default()
    };
    let backend = SqliteBackend::open(dir.path().join("taskq.db"), config)
        .await
        .unwrap();
    let queue = Queue::new(backend, QueueConfig::default()).unwrap();
    // The clock jumps ten minutes at a time: ticks stay on time for an hour.
    let hour = Duration::from_secs(3600);
    let daily = Schedule::cron("daily", "daily", "30 2 * * *").in_zone("Europe/Berlin");
    let hourly = Schedule::cron("hourly", "hourly", "0 * * * *").in_zone("Europe/Berlin");
    for schedule in [daily.grace(hour), hourly.grace(hour)] {
        queue.schedules().upsert(schedule).await.unwrap();
    }
    queue
}

/// Moves `clock` to `until` ten minutes at a time, ticking at each step.
async fn walk(queue: &Queue, clock: &ManualClock, until: SystemTime) -> u64 {
    let mut missed = 0;
    while clock.now() < until {
        clock.advance(Duration::from_secs(600));
        missed += queue.schedules().tick().await.unwrap().missed;
    }
    missed
}

#[tokio::test]
async fn spring_forward_neither_skips_nor_doubles_a_tick() {
    let dir = tempfile::tempdir().unwrap();
    // Noon on Saturday 27 March 2027; clocks go from 02:00 to 03:00 on Sunday.
    let clock = ManualClock::new(utc("2027-03-27T11:00:00Z"));
    let queue = berlin_queue(&dir, &clock).await;
    let missed = walk(&queue, &clock, utc("2027-03-29T11:00:00Z")).await;
    assert_eq!(missed, 0);
    assert_eq!(
        ticks(&queue, "daily").await,
        [
            // 02:30 does not exist on Sunday: the first moment after the gap.
            "2027-03-28T01:00:00Z",
            // 02:30 summer time on Monday.
            "2027-03-29T00:30:00Z",
        ]
    );
    let hourly = ticks(&queue, "hourly").await;
    let sunday: Vec<_> = hourly
        .iter()
        .filter(|t| t.as_str() >= "2027-03-27T23:00:00Z" && t.as_str() < "2027-03-28T22:00:00Z")
        .collect();
    assert_eq!(sunday.len(), 23, "a Berlin day of 23 hours: {sunday:?}");
    assert_eq!(
        hourly.len(),
        48,
        "every hour of two days, each once: {hourly:?}"
    );
}

#[tokio::test]
async fn fall_back_neither_skips_nor_doubles_a_tick() {
    let dir = tempfile::tempdir().unwrap();
    // Noon on Saturday 30 October 2027; clocks go from 03:00 back to 02:00 on Sunday.
    let clock = ManualClock::new(utc("2027-10-30T10:00:00Z"));
    let queue = berlin_queue(&dir, &clock).await;
    walk(&queue, &clock, utc("2027-11-01T11:00:00Z")).await;
    assert_eq!(
        ticks(&queue, "daily").await,
        [
            // 02:30 happens twice on Sunday: once, the first time.
            "2027-10-31T00:30:00Z",
            // 02:30 winter time on Monday.
            "2027-11-01T01:30:00Z",
        ]
    );
    let hourly = ticks(&queue, "hourly").await;
    let sunday: Vec<_> = hourly
        .iter()
        .filter(|t| t.as_str() >= "2027-10-30T22:00:00Z" && t.as_str() < "2027-10-31T23:00:00Z")
        .collect();
    assert_eq!(sunday.len(), 25, "a Berlin day of 25 hours: {sunday:?}");
    let mut distinct = hourly.clone();
    distinct.dedup();
    assert_eq!(distinct, hourly, "no hour twice");
}

#[tokio::test]
async fn a_stored_schedule_that_does_not_read_is_skipped_and_the_others_tick() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc("2027-03-27T11:00:00Z"));
    let queue = berlin_queue(&dir, &clock).await;
    // As a newer taskq might have stored it: a zone this build does not know.
    let conn = rusqlite::Connection::open(dir.path().join("taskq.db")).unwrap();
    let changed = conn
        .execute(
            "UPDATE taskq_schedules SET zone = 'Mars/Olympus' WHERE name = 'daily'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    for _ in 0..2 {
        walk(&queue, &clock, clock.now() + Duration::from_secs(3600)).await;
    }
    assert_eq!(ticks(&queue, "daily").await.len(), 0);
    assert_eq!(ticks(&queue, "hourly").await.len(), 2, "the others tick");
    let listed = queue.schedules().list().await.unwrap();
    assert_eq!(listed.len(), 2, "it is still listed, as stored");
}
