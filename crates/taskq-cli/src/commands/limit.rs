//! `taskq limit`

use serde_json::{json, Value};
use taskq::{LimitInfo, Limits, Queue, Rate};

use super::parse_duration;
use crate::failure::Failure;
use crate::output::{self, Output};

/// Limit how many tasks of an action run at once and how fast they start,
/// across every worker on every machine. Limits are stored in the
/// database and take effect at the next claim; running tasks go on.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  taskq limit set charge --concurrency 5\n  taskq limit set geocode --rate 20/1s\n  taskq limit set import --per-key 1    # with taskq enqueue --concurrency-key CUSTOMER\n  taskq limit list\n  taskq limit clear charge"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Set(SetArgs),
    /// List the limited actions: their limits, the slots taken (running
    /// tasks under a live lease), the starts the rate admits now, and the
    /// concurrency keys at their limit.
    List(ListArgs),
    /// Remove an action's limits.
    Clear(ActionArgs),
}

/// Set an action's limits, replacing any it had (give at least one).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("limit").required(true).multiple(true).args(["concurrency", "rate", "per_key"])))]
pub struct SetArgs {
    /// The action to limit.
    pub action: String,
    /// At most this many of its tasks run at once.
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// At most COUNT starts per PERIOD, like 20/1s or 1000/1h; a quiet
    /// action may start COUNT at once.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<Rate>,
    /// At most this many tasks with the same concurrency key run at once
    /// (tasks without a key are not held back by it).
    #[arg(long)]
    pub per_key: Option<u32>,
}

/// List the limits.
#[derive(Debug, clap::Args)]
pub struct ListArgs {}

/// An action, by name.
#[derive(Debug, clap::Args)]
pub struct ActionArgs {
    /// The action.
    pub action: String,
}

impl Args {
    /// Whether the subcommand only reads (`list`).
    pub fn only_reads(&self) -> bool {
        matches!(self.command, Command::List(_))
    }
}

/// `20/1s`, `1000/1h`; a bare `20/s` reads as one second.
fn parse_rate(text: &str) -> Result<Rate, String> {
    let (count, per) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not a rate; write it like 20/1s or 1000/1h"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("{count:?} is not a whole number of starts"))?;
    let per = per.trim();
    let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
        parse_duration(per)?
    } else {
        parse_duration(&format!("1{per}"))?
    };
    Ok(Rate::new(count, per))
}

pub async fn run(args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    match args.command {
        Command::Set(args) => {
            let mut limits = Limits::new();
            limits.concurrency = args.concurrency;
            limits.rate = args.rate;
            limits.per_key = args.per_key;
            queue.set_limits(&args.action, limits).await?;
            if out.json {
                let mut value = limits_json(&limits);
                value["action"] = args.action.into();
                return out.json(&value);
            }
            out.line(format!(
                "{} is limited to {}",
                args.action,
                describe(&limits)
            ))
        }
        Command::List(_) => list(&queue.limits().await?, out),
        Command::Clear(args) => {
            let cleared = queue.clear_limits(&args.action).await?;
            if out.json {
                return out.json(&json!({"action": args.action, "cleared": cleared}));
            }
            out.line(if cleared {
                format!("{} has no limits now", args.action)
            } else {
                format!("{} had no limits", args.action)
            })
        }
    }
}

/// The limits in words: `5 at once, 20 per 1s, 1 per key`.
fn describe(limits: &Limits) -> String {
    let mut parts = Vec::new();
    if let Some(n) = limits.concurrency {
        parts.push(format!("{n} at once"));
    }
    if let Some(rate) = limits.rate {
        parts.push(format!("{} per {}", rate.count, output::duration(rate.per)));
    }
    if let Some(n) = limits.per_key {
        parts.push(format!("{n} per key"));
    }
    parts.join(", ")
}

/// The limits as JSON: each one, or null when off; a rate's period in
/// seconds.
fn limits_json(limits: &Limits) -> Value {
    json!({
        "concurrency": limits.concurrency,
        "rate": limits.rate.map(|r| json!({"count": r.count, "per_seconds": r.per.as_secs_f64()})),
        "per_key": limits.per_key,
    })
}

/// A limited action as JSON (`limit list`, `stats`).
pub fn limit_json(info: &LimitInfo) -> Value {
    let mut value = limits_json(&info.limits);
    value["action"] = info.action.clone().into();
    value["running"] = info.running.into();
    value["tokens"] = info.tokens.into();
    value["busy_keys"] = info.busy_keys.into();
    value["updated_at"] = output::time(info.updated_at).into();
    value
}

fn list(limits: &[LimitInfo], out: &Output) -> Result<(), Failure> {
    if out.json {
        return out.json(&Value::Array(limits.iter().map(limit_json).collect()));
    }
    table(limits, out, "no limits")
}

/// The limited actions as a table for people (`limit list`, `stats`);
/// `empty` when there are none.
pub fn table(limits: &[LimitInfo], out: &Output, empty: &str) -> Result<(), Failure> {
    let or_dash = |n: Option<String>| n.unwrap_or_else(|| "-".to_owned());
    let rows: Vec<Vec<String>> = limits
        .iter()
        .map(|info| {
            let limits = &info.limits;
            let running = match limits.concurrency {
                Some(n) => format!("{}/{n}", info.running),
                None => info.running.to_string(),
            };
            vec![
                info.action.clone(),
                running,
                or_dash(
                    limits
                        .rate
                        .map(|r| format!("{}/{}", r.count, output::duration(r.per))),
                ),
                or_dash(info.tokens.map(|t| t.to_string())),
                or_dash(limits.per_key.map(|n| n.to_string())),
                if limits.per_key.is_some() {
                    info.busy_keys.to_string()
                } else {
                    "-".to_owned()
                },
            ]
        })
        .collect();
    let header = [
        "LIMITED ACTION",
        "RUNNING",
        "RATE",
        "STARTS NOW",
        "PER KEY",
        "BUSY KEYS",
    ];
    out.table(&header, &rows, empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_read_as_count_per_period() {
        assert_eq!(parse_rate("20/1s").unwrap(), Rate::per_second(20));
        assert_eq!(parse_rate("20/s").unwrap(), Rate::per_second(20));
        let hourly = Rate::new(1000, Duration::from_secs(3600));
        assert_eq!(parse_rate(" 1000 / 1h ").unwrap(), hourly);
        for bad in ["20", "x/1s", "20/soon", "-1/1s", "20/-1s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
