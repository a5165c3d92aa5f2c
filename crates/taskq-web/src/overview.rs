//! The overview: every action's counts, pause state, backlog age and the
//! last hour's throughput, every limited action's limits and the slots
//! taken, and every schedule's next tick.

use std::time::{Duration, SystemTime};

use askama::Template;
use axum::extract::State;

use crate::chart::{self, Minute};
use crate::page::{html, relative, span, time, Chrome, Failure, PageResult};
use crate::App;

/// One action's row.
pub(crate) struct Row {
    action: String,
    /// The query string that filters the task list to the action.
    query: String,
    waiting: u64,
    queued: u64,
    running: u64,
    failed: u64,
    succeeded: u64,
    cancelled: u64,
    paused: bool,
    oldest_ready: String,
    priorities: String,
    spark: String,
    completed_hour: u64,
    failed_hour: u64,
}

/// One schedule's row.
pub(crate) struct ScheduleRow {
    name: String,
    action: String,
    /// The query string that filters the task list to its action.
    query: String,
    timing: String,
    next: String,
    next_at: String,
    last: String,
    paused: bool,
}

impl ScheduleRow {
    fn of(info: &taskq::ScheduleInfo) -> Self {
        let schedule = &info.schedule;
        let timing = match &schedule.timing {
            taskq::Timing::Cron { expression, zone } => format!("{expression} ({zone})"),
            taskq::Timing::Every(every) => format!("every {}", span(*every)),
        };
        ScheduleRow {
            name: schedule.name.clone(),
            action: schedule.action.clone(),
            query: serde_urlencoded::to_string([("action", &schedule.action)]).unwrap_or_default(),
            timing,
            next: relative(info.next_at),
            next_at: time(info.next_at),
            last: info.last_at.map_or_else(|| "-".to_owned(), relative),
            paused: info.paused,
        }
    }
}

/// One limited action's row: each limit in words, or `-` when off.
pub(crate) struct LimitRow {
    action: String,
    /// The query string that filters the task list to the action.
    query: String,
    running: String,
    rate: String,
    tokens: String,
    per_key: String,
    busy_keys: String,
}

impl LimitRow {
    fn of(info: &taskq::LimitInfo) -> Self {
        let dash = || "-".to_owned();
        let limits = &info.limits;
        LimitRow {
            action: info.action.clone(),
            query: serde_urlencoded::to_string([("action", &info.action)]).unwrap_or_default(),
            running: match limits.concurrency {
                Some(n) => format!("{} of {n}", info.running),
                None => info.running.to_string(),
            },
            rate: limits.rate.map_or_else(dash, |rate| {
                format!("{} per {}", rate.count, span(rate.per))
            }),
            tokens: info.tokens.map_or_else(dash, |n| n.to_string()),
            per_key: limits.per_key.map_or_else(dash, |n| n.to_string()),
            busy_keys: limits
                .per_key
                .map_or_else(dash, |_| info.busy_keys.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    chrome: Chrome,
    rows: Vec<Row>,
    limits: Vec<LimitRow>,
    schedules: Vec<ScheduleRow>,
    chart: String,
    completed_hour: u64,
    retried_hour: u64,
    failed_hour: u64,
}

/// `GET /`: the stats of every action (the kept counts, cheap at any
/// size) and an hour of the throughput history.
pub(crate) async fn page(State(app): State<App>, chrome: Chrome) -> PageResult {
    let fail = |error: taskq::Error| Failure::from(error).on(&chrome);
    let stats = app.queue.stats().await.map_err(fail)?;
    let schedules = app.queue.schedules().list().await.map_err(fail)?;
    let limits = app.queue.limits().await.map_err(fail)?;
    let history = app
        .queue
        .throughput(Duration::from_secs(60 * chart::MINUTES as u64))
        .await
        .map_err(fail)?;
    let now = SystemTime::now();
    let mut names: Vec<&str> = stats.iter().map(|row| row.action.as_str()).collect();
    // Actions that ran in the last hour but hold no task now get a row too.
    for row in &history {
        if !names.contains(&row.action.as_str()) {
            names.push(&row.action);
        }
    }
    names.sort_unstable();
    let rows = names
        .into_iter()
        .map(|name| {
            let blank = taskq::ActionStats::new(name);
            let stats = stats
                .iter()
                .find(|row| row.action == name)
                .unwrap_or(&blank);
            let bars = chart::minutes(&history, now, |row| row.action == name);
            row(stats, &bars)
        })
        .collect();
    let all = chart::minutes(&history, now, |_| true);
    let total = |get: fn(&Minute) -> u64| all.iter().map(get).sum::<u64>();
    let overview = Overview {
        rows,
        limits: limits.iter().map(LimitRow::of).collect(),
        schedules: schedules.iter().map(ScheduleRow::of).collect(),
        chart: chart::svg(&all, 720, 120, true),
        completed_hour: total(|m| m.completed),
        retried_hour: total(|m| m.retried),
        failed_hour: total(|m| m.failed),
        chrome: chrome.clone(),
    };
    html(&overview, &chrome)
}

fn row(stats: &taskq::ActionStats, bars: &[Minute]) -> Row {
    let priorities = match stats.priorities.as_slice() {
        [] => "-".to_owned(),
        [only] => only.to_string(),
        many => many
            .iter()
            .map(i16::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    Row {
        action: stats.action.clone(),
        query: serde_urlencoded::to_string([("action", &stats.action)]).unwrap_or_default(),
        waiting: stats.waiting,
        queued: stats.queued,
        running: stats.running,
        failed: stats.failed,
        succeeded: stats.succeeded,
        cancelled: stats.cancelled,
        paused: stats.paused,
        oldest_ready: stats
            .oldest_ready
            .map_or_else(|| "-".to_owned(), |at| relative(at).replace(" ago", "")),
        priorities,
        spark: chart::svg(bars, 120, 24, false),
        completed_hour: bars.iter().map(|m| m.completed).sum(),
        failed_hour: bars.iter().map(|m| m.failed).sum(),
    }
}
