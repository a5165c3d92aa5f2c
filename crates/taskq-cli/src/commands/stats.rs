//! `taskq stats`

use std::time::{Duration, SystemTime};

use serde_json::json;
use taskq::Queue;

use super::{limit, schedule};
use crate::failure::Failure;
use crate::output::{self, Output};

/// Print task counts per action and state, how long the oldest ready task
/// of each action has waited, the priorities of its queued tasks (lowest,
/// first to run, first), which actions are paused, the limited actions
/// with the slots taken, and when each schedule ticks next. With --json:
/// {"actions": [...], "limits": [...], "schedules": [...]}.
///
/// Example: taskq stats --json
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, queue: &Queue, out: &Output) -> Result<(), Failure> {
    let stats = queue.stats().await?;
    let schedules = queue.schedules().list().await?;
    let limits = queue.limits().await?;
    if out.json {
        let mut actions =
            serde_json::to_value(&stats).map_err(|e| Failure::other(e.to_string()))?;
        // Times as everywhere else in the command's JSON.
        for (row, stats) in actions.as_array_mut().into_iter().flatten().zip(&stats) {
            row["oldest_ready"] = stats.oldest_ready.map(output::time).into();
        }
        let schedules: Vec<_> = schedules.iter().map(schedule::schedule_json).collect();
        let limits: Vec<_> = limits.iter().map(limit::limit_json).collect();
        return out.json(&json!({"actions": actions, "limits": limits, "schedules": schedules}));
    }
    actions(&stats, out)?;
    if !limits.is_empty() {
        out.line("")?;
        limit::table(&limits, out, "")?;
    }
    if schedules.is_empty() {
        return Ok(());
    }
    out.line("")?;
    schedule::table(&schedules, out, "")
}

/// The table of actions.
fn actions(stats: &[taskq::ActionStats], out: &Output) -> Result<(), Failure> {
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|row| {
            vec![
                row.action.clone(),
                row.queued.to_string(),
                row.running.to_string(),
                row.failed.to_string(),
                row.succeeded.to_string(),
                row.cancelled.to_string(),
                row.total().to_string(),
                row.oldest_ready
                    .and_then(|at| SystemTime::now().duration_since(at).ok())
                    .map_or_else(
                        || "-".to_owned(),
                        |age| output::duration(Duration::from_secs(age.as_secs())),
                    ),
                priorities(&row.priorities),
                if row.paused { "paused" } else { "" }.to_string(),
            ]
        })
        .collect();
    out.table(
        &[
            "ACTION",
            "QUEUED",
            "RUNNING",
            "FAILED",
            "SUCCEEDED",
            "CANCELLED",
            "TOTAL",
            "OLDEST READY",
            "PRIORITIES",
            "PAUSED",
        ],
        &rows,
        "no tasks",
    )
}

/// `0,1,5`, or `-` when nothing is queued.
fn priorities(priorities: &[i16]) -> String {
    if priorities.is_empty() {
        return "-".to_owned();
    }
    let named: Vec<String> = priorities.iter().map(i16::to_string).collect();
    named.join(",")
}
