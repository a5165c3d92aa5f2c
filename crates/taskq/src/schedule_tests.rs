use std::time::{Duration, SystemTime};

use super::*;

/// The instant of a wall-clock time in `zone`.
fn at(zone: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> SystemTime {
    let zoned = jiff::civil::date(y, mo, d)
        .at(h, mi, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get(zone).unwrap())
        .unwrap();
    SystemTime::from(zoned.timestamp())
}

/// The ticks of `schedule` from `from` (exclusive) to `to` (inclusive).
fn ticks(schedule: &Schedule, from: SystemTime, to: SystemTime) -> Vec<SystemTime> {
    let mut out = Vec::new();
    let mut tick = schedule.first_tick(from).unwrap();
    while tick <= to {
        out.push(tick);
        tick = schedule.clock().unwrap().after(tick).unwrap();
    }
    out
}

const BERLIN: &str = "Europe/Berlin";

#[test]
fn a_daily_time_inside_the_spring_gap_ticks_once_right_after_it() {
    let daily = Schedule::cron("d", "a", "30 2 * * *").in_zone(BERLIN);
    // 2026-03-29: clocks go from 02:00 to 03:00 in Berlin.
    let got = ticks(
        &daily,
        at(BERLIN, 2026, 3, 27, 12, 0),
        at(BERLIN, 2026, 3, 31, 12, 0),
    );
    assert_eq!(
        got,
        vec![
            at(BERLIN, 2026, 3, 28, 2, 30),
            at(BERLIN, 2026, 3, 29, 3, 0),
            at(BERLIN, 2026, 3, 30, 2, 30),
            at(BERLIN, 2026, 3, 31, 2, 30),
        ]
    );
}

#[test]
fn a_daily_time_inside_the_autumn_overlap_ticks_once() {
    let daily = Schedule::cron("d", "a", "30 2 * * *").in_zone(BERLIN);
    // 2026-10-25: 02:00–02:59 happens twice in Berlin.
    let got = ticks(
        &daily,
        at(BERLIN, 2026, 10, 23, 12, 0),
        at(BERLIN, 2026, 10, 27, 12, 0),
    );
    assert_eq!(got.len(), 4, "{got:?}");
    let hours: Vec<Duration> = got
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).unwrap())
        .collect();
    // 24 h, then 25 h across the change (the first 02:30), then 24 h.
    assert_eq!(
        hours,
        [24, 25, 24].map(|h| Duration::from_secs(h * 3600)).to_vec()
    );
}

#[test]
fn an_hourly_schedule_ticks_every_real_hour_across_both_changes() {
    let hourly = Schedule::cron("h", "a", "0 * * * *").in_zone(BERLIN);
    let spring = ticks(
        &hourly,
        at(BERLIN, 2026, 3, 28, 23, 30),
        at(BERLIN, 2026, 3, 29, 23, 30),
    );
    assert_eq!(spring.len(), 23, "a day of 23 hours");
    let autumn = ticks(
        &hourly,
        at(BERLIN, 2026, 10, 24, 23, 30),
        at(BERLIN, 2026, 10, 25, 23, 30),
    );
    assert_eq!(autumn.len(), 25, "a day of 25 hours");
    for day in [spring, autumn] {
        for w in day.windows(2) {
            assert_eq!(
                w[1].duration_since(w[0]).unwrap(),
                Duration::from_secs(3600)
            );
        }
    }
}

fn every_minute() -> Schedule {
    Schedule::every("m", "a", Duration::from_secs(60))
}

#[test]
fn ticks_within_the_grace_are_each_enqueued() {
    let t0 = at("UTC", 2026, 1, 1, 0, 0);
    let plan = every_minute()
        .plan(t0, t0 + Duration::from_secs(59))
        .unwrap();
    assert_eq!(plan.ticks, vec![t0]);
    assert!(!plan.missed);
    assert_eq!(plan.next, t0 + Duration::from_secs(60));
    let late = every_minute()
        .grace(Duration::from_secs(600))
        .plan(t0, t0 + Duration::from_secs(150))
        .unwrap();
    assert_eq!(late.ticks.len(), 3, "three ticks, each its own task");
    assert!(!late.missed);
}

#[test]
fn missed_ticks_become_one_task_or_none() {
    let t0 = at("UTC", 2026, 1, 1, 0, 0);
    // Ten minutes without workers, found 10 s after the eleventh tick.
    let now = t0 + Duration::from_secs(610);
    let once = every_minute().plan(t0, now).unwrap();
    assert_eq!(
        once.ticks,
        vec![t0 + Duration::from_secs(540), t0 + Duration::from_secs(600)],
        "the latest missed tick, then the one on time"
    );
    assert!(once.missed);
    assert_eq!(once.next, t0 + Duration::from_secs(660));
    let skip = every_minute().missed(Missed::Skip).plan(t0, now).unwrap();
    assert_eq!(skip.ticks, vec![t0 + Duration::from_secs(600)]);
    assert_eq!(skip.next, once.next);
}

#[test]
fn a_schedule_far_behind_jumps_past_now() {
    let t0 = at("UTC", 2026, 1, 1, 0, 0);
    let every_second = Schedule::every("s", "a", Duration::from_secs(1));
    let now = t0 + Duration::from_secs(30 * 86_400);
    let plan = every_second.plan(t0, now).unwrap();
    assert_eq!(plan.ticks.len(), 1, "one task for the missed ticks");
    assert!(plan.next > now && plan.next <= now + Duration::from_secs(1));
}

#[test]
fn bad_schedules_are_refused_with_the_field() {
    let field = |s: Schedule| match s.validate() {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field(Schedule::cron("x", "a", "61 * * * *")), "cron");
    assert_eq!(field(Schedule::cron("x", "a", "* * *")), "cron");
    assert_eq!(
        field(Schedule::cron("x", "a", "@daily").in_zone("Mars/Olympus")),
        "zone"
    );
    assert_eq!(
        field(Schedule::every("x", "a", Duration::from_millis(200))),
        "interval"
    );
    assert_eq!(
        field(Schedule::every("", "a", Duration::from_secs(1))),
        "schedule"
    );
    assert_eq!(
        field(Schedule::every("x", "", Duration::from_secs(1))),
        "action"
    );
    let mut delayed = Schedule::every("x", "a", Duration::from_secs(1));
    delayed.options.not_before = Some(NotBefore::Delay(Duration::from_secs(1)));
    assert_eq!(field(delayed), "not_before");
    assert!(Schedule::cron("x", "a", "@hourly").validate().is_ok());
    assert!(Schedule::cron("x", "a", "*/5 * * * * *").validate().is_ok());
}

#[test]
fn options_are_stored_and_read_back() {
    let options = EnqueueOptions {
        max_tries: 3,
        timeout: Duration::from_millis(1500),
        priority: -2,
        unique: Some(
            Unique::key("k")
                .including(State::Failed)
                .per(Duration::from_secs(60)),
        ),
        ..EnqueueOptions::default()
    };
    let text = StoredOptions::text(&options);
    assert_eq!(StoredOptions::parse(&text).unwrap(), options);
    assert_eq!(
        StoredOptions::parse(&StoredOptions::text(&EnqueueOptions::default())).unwrap(),
        EnqueueOptions::default()
    );
}

#[test]
fn missed_policies_read_their_names() {
    for missed in [Missed::RunOnce, Missed::Skip] {
        assert_eq!(missed.as_str().parse::<Missed>().unwrap(), missed);
    }
    assert!("sometimes".parse::<Missed>().is_err());
}
