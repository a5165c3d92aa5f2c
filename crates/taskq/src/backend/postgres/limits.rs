//! Limits per action (migration 0007): set, listed, and the claims that
//! keep to them (every claim runs here: its statement is chosen by the
//! action's limits).
//!
//! A claim of an action without limits runs `task_claim.sql`, which takes
//! nothing of a limited action; a claim of a limited one runs
//! `task_claim_limited.sql`, which locks the action's limits row. Which
//! one to run first is a hint this process keeps per action, learned from
//! the limits row whenever a claim comes back empty: a wrong hint costs
//! one more statement, never a task claimed past a limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::error::db_error;
use super::rows::read_task;
use super::run;
use super::PostgresBackend;
use crate::attempt::WorkerId;
use crate::backend::{Claimed, ExpiryBackoff};
use crate::error::Result;
use crate::limits::{next_token_in, Held, LimitInfo, Limits, Rate};
use crate::micros;
use crate::task::Task;

/// The statements of limits, with the schema filled in.
#[derive(Debug)]
pub(super) struct LimitSql {
    pub(super) claim: String,
    bucket: String,
    set: String,
    clear: String,
    list: String,
}

impl LimitSql {
    pub(super) fn new(fill: impl Fn(&str) -> String) -> Self {
        LimitSql {
            claim: fill(include_str!("sql/task_claim_limited.sql")),
            bucket: fill(include_str!("sql/limit_bucket.sql")),
            set: fill(include_str!("sql/limit_set.sql")),
            clear: fill(include_str!("sql/limit_clear.sql")),
            list: fill(include_str!("sql/limit_list.sql")),
        }
    }
}

/// What this process last learned of an action's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hint {
    /// It has none (or nothing was learned yet).
    Unlimited,
    /// It has limits; `rate`: one of them is a rate.
    Limited { rate: bool },
}

/// The hints, per action.
#[derive(Debug, Default)]
pub(super) struct Hints(Mutex<HashMap<String, Hint>>);

impl Hints {
    pub(super) fn get(&self, action: &str) -> Hint {
        let hints = self.0.lock().unwrap_or_else(|e| e.into_inner());
        hints.get(action).copied().unwrap_or(Hint::Unlimited)
    }

    fn set(&self, action: &str, hint: Hint) {
        let mut hints = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if hint == Hint::Unlimited {
            hints.remove(action);
        } else {
            hints.insert(action.to_owned(), hint);
        }
    }
}

/// The limits of a row of `limit_list.sql`.
fn read_info(row: &Row) -> Result<LimitInfo> {
    let read = || -> std::result::Result<LimitInfo, tokio_postgres::Error> {
        let count = |i| {
            row.try_get::<_, Option<i32>>(i)
                .map(|n| n.map(|n| n as u32))
        };
        let rate = match (count(2)?, row.try_get::<_, Option<i64>>(3)?) {
            (Some(count), Some(per)) => Some(Rate::new(count, micros::to_duration(per))),
            _ => None,
        };
        Ok(LimitInfo {
            action: row.try_get(0)?,
            limits: Limits {
                concurrency: count(1)?,
                rate,
                per_key: count(4)?,
            },
            tokens: row.try_get::<_, Option<i64>>(5)?.map(|n| n.max(0) as u64),
            running: row.try_get::<_, i64>(6)? as u64,
            busy_keys: row.try_get::<_, i64>(7)? as u64,
            updated_at: row.try_get::<_, SystemTime>(8)?,
        })
    };
    read().map_err(db_error)
}

/// The least time between two requeues of an action's expired leases by
/// this process's claims: the statement costs about as much as half a
/// claim, and leases last seconds to minutes.
const EXPIRY_EVERY: Duration = Duration::from_millis(100);

impl PostgresBackend {
    /// Whether a claim of `action` should first requeue its expired
    /// leases: at most every [`EXPIRY_EVERY`] per action in this process.
    pub(super) fn expiry_due(&self, action: &str) -> bool {
        let now = std::time::Instant::now();
        let mut checked = self
            .expiry_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if checked
            .get(action)
            .is_some_and(|at| now.duration_since(*at) < EXPIRY_EVERY)
        {
            return false;
        }
        if checked.len() >= 10_000 {
            checked.retain(|_, at| now.duration_since(*at) < EXPIRY_EVERY);
        }
        checked.insert(action.to_owned(), now);
        true
    }

    /// Claims up to `limit` tasks of `action` (see `Backend::task_claim`):
    /// by the statement the hint calls for, and by the other one once when
    /// the hint turns out wrong.
    pub(super) async fn claim(
        &self,
        action: &str,
        limit: u32,
        expiry: ExpiryBackoff,
        worker: &WorkerId,
    ) -> Result<Claimed> {
        let mut expire = self.expiry_due(action);
        let mut hint = self.limit_hints.get(action);
        loop {
            let tasks = self
                .claim_once(action, limit, expiry, worker, expire, hint)
                .await?;
            if tasks.len() as u32 >= limit {
                let limited = hint != Hint::Unlimited;
                let held = Held {
                    limited,
                    retry_in: None,
                };
                return Ok(Claimed { tasks, held });
            }
            let (held, wrong) = self.held_back(action, hint, tasks.is_empty()).await?;
            if !(wrong && tasks.is_empty()) {
                return Ok(Claimed { tasks, held });
            }
            // The other statement, once: the hint is right now.
            expire = false;
            hint = self.limit_hints.get(action);
        }
    }

    /// One claim of `action` by the statement `hint` calls for, after a
    /// requeue of its expired leases when `expire` is set.
    pub(super) async fn claim_once(
        &self,
        action: &str,
        limit: u32,
        expiry: ExpiryBackoff,
        worker: &WorkerId,
        expire: bool,
        hint: Hint,
    ) -> Result<Vec<Task>> {
        let client = self.client().await?;
        let sql = match hint {
            Hint::Unlimited => &self.sql.claim,
            Hint::Limited { .. } => &self.sql.limits.claim,
        };
        let claim = self.run.ready(&client, sql).await?;
        let limit = i64::from(limit);
        let limit32 = limit as i32;
        let worker = worker.to_json();
        let claim_params: [&(dyn ToSql + Sync); 3] = match hint {
            Hint::Unlimited => [&Some(action), &limit, &worker],
            Hint::Limited { .. } => [&Some(action), &limit32, &worker],
        };
        let claimed = if expire {
            let expire = self.run.ready(&client, &self.sql.requeue_expired).await?;
            let expire_params: [&(dyn ToSql + Sync); 3] =
                [&Some(action), &expiry.initial_micros, &expiry.max_micros];
            // Sent together (pipelined), unless behind a pooler; each
            // statement is its own transaction, and the claim sees what
            // the requeue committed.
            let (expired, claimed) = if self.run.unprepared() {
                let expired = run::execute(&client, &expire, &expire_params).await;
                (expired, run::query(&client, &claim, &claim_params).await)
            } else {
                tokio::join!(
                    run::execute(&client, &expire, &expire_params),
                    run::query(&client, &claim, &claim_params),
                )
            };
            if expired? > 0 {
                self.wrote();
            }
            claimed
        } else {
            run::query(&client, &claim, &claim_params).await
        };
        let mut tasks = claimed?.iter().map(read_task).collect::<Result<Vec<_>>>()?;
        if !tasks.is_empty() {
            self.wrote();
        }
        tasks.sort_by_key(|task| (task.priority, task.not_before, task.id));
        Ok(tasks)
    }

    /// What the limits of `action` hold back after a claim by the
    /// statement `hint` called for took fewer tasks than asked (`empty`:
    /// none), learning whether it has limits when that may have changed
    /// (and correcting the hint). Says whether the claim ran the wrong
    /// statement for the action, which an empty claim then runs again with
    /// the right one. A claim that took tasks needs no look: the plain
    /// statement takes nothing of a limited action, so its tasks prove the
    /// action unlimited, and without a rate nothing waits for a time.
    pub(super) async fn held_back(
        &self,
        action: &str,
        hint: Hint,
        empty: bool,
    ) -> Result<(Held, bool)> {
        match hint {
            _ if empty => {}
            Hint::Unlimited => return Ok((Held::default(), false)),
            Hint::Limited { rate: false } => {
                let held = Held {
                    limited: true,
                    retry_in: None,
                };
                return Ok((held, false));
            }
            Hint::Limited { rate: true } => {}
        }
        let rows = self.query(&self.sql.limits.bucket, &[&action]).await?;
        let Some(row) = rows.first() else {
            self.limit_hints.set(action, Hint::Unlimited);
            return Ok((Held::default(), hint != Hint::Unlimited));
        };
        let count: Option<i32> = row.try_get(0).map_err(db_error)?;
        let per: Option<i64> = row.try_get(1).map_err(db_error)?;
        let tokens: Option<f64> = row.try_get(2).map_err(db_error)?;
        let rate = count
            .zip(per)
            .map(|(count, per)| Rate::new(count.max(1) as u32, micros::to_duration(per)));
        let learned = Hint::Limited {
            rate: rate.is_some(),
        };
        self.limit_hints.set(action, learned);
        let retry_in = match (rate, tokens) {
            (Some(rate), Some(tokens)) if tokens < 1.0 => Some(next_token_in(rate, tokens)),
            _ => None,
        };
        let held = Held {
            limited: true,
            retry_in,
        };
        Ok((held, hint == Hint::Unlimited))
    }

    pub(super) async fn set_limits(&self, action: &str, limits: Limits) -> Result<()> {
        let count = |n: Option<u32>| n.map(|n| n as i32);
        let rate_count = count(limits.rate.map(|r| r.count));
        let rate_per = limits.rate.map(|r| r.per_micros());
        self.execute(
            &self.sql.limits.set,
            &[
                &action,
                &count(limits.concurrency),
                &rate_count,
                &rate_per,
                &count(limits.per_key),
            ],
        )
        .await?;
        self.limit_hints.set(
            action,
            Hint::Limited {
                rate: limits.rate.is_some(),
            },
        );
        Ok(())
    }

    pub(super) async fn clear_limits(&self, action: &str) -> Result<bool> {
        let cleared = self.execute(&self.sql.limits.clear, &[&action]).await? == 1;
        self.limit_hints.set(action, Hint::Unlimited);
        Ok(cleared)
    }

    pub(super) async fn list_limits(&self) -> Result<Vec<LimitInfo>> {
        let rows = self.query(&self.sql.limits.list, &[]).await?;
        rows.iter().map(read_info).collect()
    }
}
