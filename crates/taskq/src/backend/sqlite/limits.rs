//! Limits per action on one SQLite connection (migration 0007): set,
//! listed, and the claims that keep to them. Claims run under the write
//! lock, one at a time, so a claim's count of what runs is exact.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::error::db_error;
use super::rows::read_task;
use crate::attempt::WorkerId;
use crate::backend::Claimed;
use crate::error::Result;
use crate::limits::{next_token_in, refill, Held, LimitInfo, Limits, Rate};
use crate::micros;

/// An action's limits row: its limits and its bucket (tokens as of when).
struct Stored {
    limits: Limits,
    tokens: f64,
    refilled_at: i64,
}

/// The limits and bucket of a row, from column `at` on.
fn read_stored(row: &Row<'_>, at: usize) -> rusqlite::Result<Stored> {
    let count = |i| {
        row.get::<_, Option<i64>>(at + i)
            .map(|n| n.map(|n| n as u32))
    };
    let rate = match (count(1)?, row.get::<_, Option<i64>>(at + 2)?) {
        (Some(count), Some(per)) => Some(Rate::new(count, micros::to_duration(per))),
        _ => None,
    };
    Ok(Stored {
        limits: Limits {
            concurrency: count(0)?,
            rate,
            per_key: count(3)?,
        },
        tokens: row.get(at + 4)?,
        refilled_at: row.get(at + 5)?,
    })
}

impl Stored {
    /// The tokens in the bucket at `now`; `None` without a rate.
    fn tokens_at(&self, now: i64) -> Option<f64> {
        let rate = self.limits.rate?;
        Some(refill(rate, self.tokens, now - self.refilled_at))
    }
}

/// Claims up to `limit` tasks of a limited `action` at `now`, as many as
/// its limits admit; `None` when it has none (the plain claim applies).
pub(crate) fn claim(
    conn: &Connection,
    now: i64,
    action: &str,
    limit: u32,
    worker: &WorkerId,
) -> Result<Option<Claimed>> {
    let found = conn
        .prepare_cached(include_str!("sql/limit_get.sql"))
        .and_then(|mut s| {
            s.query_row(params![action, now], |row| {
                Ok((read_stored(row, 0)?, row.get::<_, i64>(6)?))
            })
            .optional()
        })
        .map_err(db_error)?;
    let Some((stored, running)) = found else {
        return Ok(None);
    };
    let mut admitted = i64::from(limit);
    if let Some(concurrency) = stored.limits.concurrency {
        admitted = admitted.min(i64::from(concurrency) - running);
    }
    let tokens = stored.tokens_at(now);
    if let Some(tokens) = tokens {
        admitted = admitted.min(tokens.floor() as i64);
    }
    let mut tasks = Vec::new();
    if admitted > 0 {
        tasks = conn
            .prepare_cached(include_str!("sql/task_claim_limited.sql"))
            .and_then(|mut s| {
                let per_key = stored.limits.per_key;
                s.query_map(
                    params![now, action, admitted, worker.to_json(), per_key],
                    read_task,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db_error)?;
        tasks.sort_by_key(|task| (task.priority, task.not_before, task.id));
    }
    let mut retry_in = None;
    if let (Some(rate), Some(tokens)) = (stored.limits.rate, tokens) {
        let left = tokens - tasks.len() as f64;
        if !tasks.is_empty() {
            conn.prepare_cached(include_str!("sql/limit_spend.sql"))
                .and_then(|mut s| s.execute(params![action, left, now]))
                .map_err(db_error)?;
        }
        if left < 1.0 && tasks.len() < limit as usize {
            retry_in = Some(next_token_in(rate, left));
        }
    }
    let held = Held {
        limited: true,
        retry_in,
    };
    Ok(Some(Claimed { tasks, held }))
}

/// Sets the limits of `action` at `now` (see `Backend::limit_set`).
pub(crate) fn set(conn: &Connection, now: i64, action: &str, limits: Limits) -> Result<()> {
    let old = conn
        .prepare_cached(include_str!("sql/limit_get.sql"))
        .and_then(|mut s| {
            s.query_row(params![action, now], |row| read_stored(row, 0))
                .optional()
        })
        .map_err(db_error)?;
    // A new rate starts full; a changed one no fuller than the old bucket.
    let tokens = match (limits.rate, old.as_ref().and_then(|old| old.tokens_at(now))) {
        (Some(rate), Some(old)) => old.min(f64::from(rate.count)),
        (Some(rate), None) => f64::from(rate.count),
        (None, _) => 0.0,
    };
    let count = |n: Option<u32>| n.map(i64::from);
    conn.prepare_cached(include_str!("sql/limit_set.sql"))
        .and_then(|mut s| {
            s.execute(params![
                action,
                count(limits.concurrency),
                count(limits.rate.map(|r| r.count)),
                limits.rate.map(|r| r.per_micros()),
                count(limits.per_key),
                now,
                tokens,
            ])
        })
        .map_err(db_error)?;
    Ok(())
}

/// Removes the limits of `action`; says whether it had any.
pub(crate) fn clear(conn: &Connection, action: &str) -> Result<bool> {
    let removed = conn
        .prepare_cached(include_str!("sql/limit_clear.sql"))
        .and_then(|mut s| s.execute([action]))
        .map_err(db_error)?;
    Ok(removed == 1)
}

/// Every limited action at `now`, by action.
pub(crate) fn list(conn: &Connection, now: i64) -> Result<Vec<LimitInfo>> {
    conn.prepare_cached(include_str!("sql/limit_list.sql"))
        .and_then(|mut s| {
            s.query_map([now], |row| {
                let stored = read_stored(row, 1)?;
                Ok(LimitInfo {
                    action: row.get(0)?,
                    limits: stored.limits,
                    tokens: stored.tokens_at(now).map(|t| t.floor().max(0.0) as u64),
                    running: row.get::<_, i64>(7)? as u64,
                    busy_keys: row.get::<_, i64>(8)? as u64,
                    updated_at: micros::to_time(row.get(9)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db_error)
}
