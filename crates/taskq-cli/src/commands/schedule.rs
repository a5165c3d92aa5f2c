//! `taskq schedule`

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use taskq::{Missed, NewTask, Queue, Schedule, ScheduleInfo, Timing, Upserted};

use super::enqueue::{new_task, TaskSettings};
use super::parse_duration;
use crate::failure::Failure;
use crate::output::{self, Output};

/// Manage periodic tasks: schedules stored in the database that enqueue a
/// task of their action at each tick. Every running `taskq work` (and
/// every library worker) enqueues the ticks that come due, each exactly
/// once however many run.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  taskq schedule add nightly-report report --cron '0 3 * * *' --zone Europe/Berlin\n  taskq schedule add heartbeat ping '{\"host\": \"db\"}' --every 30s --missed skip\n  taskq schedule list\n  taskq schedule run-now nightly-report\n  taskq schedule pause heartbeat"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Add(Box<AddArgs>),
    List(ListArgs),
    /// Remove a schedule; tasks it enqueued stay.
    Remove(NameArgs),
    /// Pause a schedule for every worker: no ticks are enqueued until it
    /// is resumed.
    Pause(NameArgs),
    /// Resume a paused schedule; ticks that came due meanwhile follow its
    /// --missed policy.
    Resume(NameArgs),
    /// Enqueue the schedule's task now, besides its ticks (which stay as
    /// they are), and print its id.
    RunNow(NameArgs),
}

/// Add a schedule, or change the one of that name (its next tick is kept
/// unless its timing changed, and a paused schedule stays paused).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("timing").required(true).args(["cron", "every"])))]
pub struct AddArgs {
    /// The schedule's name, unique in the database.
    pub name: String,
    /// The action of the tasks it enqueues.
    pub action: String,
    /// The tasks' payload as JSON text (default: null).
    pub payload: Option<String>,
    /// A cron expression: five fields (minute hour day-of-month month
    /// day-of-week), six with seconds first, or @hourly, @daily, @weekly,
    /// @monthly, @yearly.
    #[arg(long)]
    pub cron: Option<String>,
    /// The time zone the cron expression is read in, an IANA name such as
    /// Europe/Berlin.
    #[arg(long, default_value = "UTC", requires = "cron")]
    pub zone: String,
    /// Tick at a fixed interval instead, like 30s, 5m or 1h (1s at least).
    #[arg(long, value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// What becomes of ticks no worker enqueued within the grace (workers
    /// stopped, schedule paused): run-once enqueues the latest of them
    /// once, skip drops them.
    #[arg(long, default_value = "run-once", value_parser = parse_missed)]
    pub missed: Missed,
    /// How late a tick may still be enqueued as on time, like 1m.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub grace: Duration,
    #[command(flatten)]
    pub settings: TaskSettings,
}

/// List the schedules with their next tick, in local time and UTC.
#[derive(Debug, clap::Args)]
pub struct ListArgs {}

/// A schedule, by name.
#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The schedule's name.
    pub name: String,
}

impl Args {
    /// Whether the subcommand only reads (`list`).
    pub fn only_reads(&self) -> bool {
        matches!(self.command, Command::List(_))
    }
}

fn parse_missed(text: &str) -> Result<Missed, String> {
    text.parse().map_err(|e: taskq::Error| e.to_string())
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let schedules = queue.schedules();
    match args.command {
        Command::Add(args) => add(*args, queue, out).await,
        Command::List(_) => list(&schedules.list().await?, out),
        Command::Remove(args) => {
            schedules.remove(&args.name).await?;
            said(out, &args.name, json!({"removed": true}), "removed")
        }
        Command::Pause(args) => {
            let changed = schedules.pause(&args.name).await?;
            let text = if changed {
                "paused: no ticks until it is resumed"
            } else {
                "was already paused"
            };
            said(
                out,
                &args.name,
                json!({"paused": true, "changed": changed}),
                text,
            )
        }
        Command::Resume(args) => {
            let changed = schedules.resume(&args.name).await?;
            let text = if changed { "resumed" } else { "was not paused" };
            said(
                out,
                &args.name,
                json!({"paused": false, "changed": changed}),
                text,
            )
        }
        Command::RunNow(args) => {
            let enqueued = schedules.run_now(&args.name).await?;
            let fields = json!({"id": enqueued.id.0, "duplicate": enqueued.duplicate});
            let text = match enqueued.duplicate {
                false => format!("enqueued task {} now", enqueued.id),
                true => format!(
                    "task {} already holds the unique key; nothing was added",
                    enqueued.id
                ),
            };
            said(out, &args.name, fields, &text)
        }
    }
}

/// Prints what a command did to the schedule `name`: `fields` with its
/// name as JSON, else the name and `text`.
fn said(out: &Output, name: &str, mut fields: Value, text: &str) -> Result<(), Failure> {
    if out.json {
        fields["name"] = name.into();
        return out.json(&fields);
    }
    out.line(format!("schedule {name} {text}"))
}

async fn add(args: AddArgs, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let payload = args.payload.clone().unwrap_or_else(|| "null".to_owned());
    let task = new_task(&args.action, payload.into_bytes(), false, "the payload")?;
    let NewTask {
        payload, options, ..
    } = args.settings.apply(task);
    let schedule = match (&args.cron, args.every) {
        (Some(cron), _) => Schedule::cron(&args.name, &args.action, cron).in_zone(&args.zone),
        (None, Some(every)) => Schedule::every(&args.name, &args.action, every),
        (None, None) => return Err(Failure::invalid("give --cron EXPR or --every DURATION")),
    };
    let mut schedule = schedule
        .options(options)
        .missed(args.missed)
        .grace(args.grace);
    schedule.payload = payload;
    let upserted = queue.schedules().upsert(schedule).await?;
    let info = queue.schedules().get(&args.name).await?;
    let next = info.as_ref().map(|i| i.next_at);
    if out.json {
        let mut value = json!({"name": args.name, "upserted": upserted});
        value["next_at"] = next.map(output::time).into();
        return out.json(&value);
    }
    let done = match upserted {
        Upserted::Created => "added",
        Upserted::Changed => "changed",
        Upserted::Unchanged => "unchanged (already stored as given)",
    };
    let next = next.map_or_else(|| "-".to_owned(), |at| both_times(at).join(", "));
    out.line(format!("schedule {} {done}; next tick {next}", args.name))
}

/// How a schedule ticks, in words: `0 3 * * * (Europe/Berlin)`, `every 30s`.
pub fn timing(timing: &Timing) -> String {
    match timing {
        Timing::Cron { expression, zone } => format!("{expression} ({zone})"),
        Timing::Every(every) => format!("every {}", output::duration(*every)),
    }
}

/// How far off `at` is: `in 2m 3s`, or `due 18s ago` for a tick no
/// worker has enqueued yet (none is running, or it is just now).
pub fn due(at: SystemTime) -> String {
    let now = SystemTime::now();
    match at.duration_since(now) {
        Ok(ahead) => format!(
            "in {}",
            output::duration(Duration::from_secs(ahead.as_secs()))
        ),
        Err(behind) => {
            let behind = Duration::from_secs(behind.duration().as_secs());
            format!("due {} ago", output::duration(behind))
        }
    }
}

/// A time in this machine's time zone and in UTC, to the second.
pub fn both_times(at: SystemTime) -> [String; 2] {
    let local = jiff::Timestamp::try_from(at)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::system()))
        .map(|zoned| zoned.strftime("%Y-%m-%d %H:%M:%S %Z").to_string())
        .unwrap_or_else(|_| "-".to_owned());
    [local, output::time(at)]
}

fn list(schedules: &[ScheduleInfo], out: &Output) -> Result<(), Failure> {
    if out.json {
        let rows: Vec<Value> = schedules.iter().map(schedule_json).collect();
        return out.json(&Value::Array(rows));
    }
    table(schedules, out, "no schedules")
}

/// The schedules as a table for people (`schedule list`, `stats`);
/// `empty` when there are none.
pub fn table(schedules: &[ScheduleInfo], out: &Output, empty: &str) -> Result<(), Failure> {
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .map(|info| {
            let [local, utc] = both_times(info.next_at);
            let schedule = &info.schedule;
            vec![
                schedule.name.clone(),
                schedule.action.clone(),
                timing(&schedule.timing),
                due(info.next_at),
                local,
                utc,
                info.last_task
                    .map_or_else(|| "-".to_owned(), |id| id.to_string()),
                schedule.missed.as_str().to_owned(),
                if info.paused { "paused" } else { "" }.to_owned(),
            ]
        })
        .collect();
    let header = [
        "SCHEDULE",
        "ACTION",
        "TIMING",
        "NEXT",
        "NEXT (LOCAL)",
        "NEXT (UTC)",
        "LAST TASK",
        "MISSED",
        "PAUSED",
    ];
    out.table(&header, &rows, empty)
}

/// Everything about a stored schedule, for `--json`.
pub fn schedule_json(info: &ScheduleInfo) -> Value {
    let schedule = &info.schedule;
    let (key, payload) = output::payload(&schedule.payload);
    let [next_local, _] = both_times(info.next_at);
    let mut value = json!({
        "name": schedule.name,
        "action": schedule.action,
        "missed": schedule.missed.as_str(),
        "grace_ms": schedule.grace.as_millis() as u64,
        "paused": info.paused,
        "next_at": output::time(info.next_at),
        "next_at_local": next_local,
        "last_at": info.last_at.map(output::time),
        "last_task": info.last_task.map(|id| id.0),
        "priority": schedule.options.priority,
        "max_tries": schedule.options.max_tries,
        "timeout_ms": schedule.options.timeout.as_millis() as u64,
        "unique_key": schedule.options.unique.as_ref().map(|u| u.key.clone()),
    });
    match &schedule.timing {
        Timing::Cron { expression, zone } => {
            value["cron"] = expression.as_str().into();
            value["zone"] = zone.as_str().into();
        }
        Timing::Every(every) => value["every_ms"] = (every.as_millis() as u64).into(),
    }
    value[key] = payload;
    value
}
