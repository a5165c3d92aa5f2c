//! Each backend operation as synchronous code on one SQLite connection,
//! running the statements of `sql/`.
//!
//! The writer thread runs these inside its group-commit transaction; the
//! transactional functions of [`super`] run them on the caller's own
//! connection. Neither commits: that is the caller's business.

use std::sync::LazyLock;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::attempt::WorkerId;
use crate::backend::{Claimed, ExpiryBackoff, Extended, FailTo};
use crate::error::{Error, Result};
use crate::micros;
use crate::names::TaskId;
use crate::options::NotBefore;
use crate::state::State;
use crate::task::{ActionStats, LeaseRef, NewTask, Task};
use crate::unique::{window_start, Enqueued, Unique};

use super::control;
use super::counts::{adopt_if_due, CachedMark};
use super::error::db_error;
use super::rows::{read_stored_task, read_task};

/// Runs `f` inside a savepoint: on error everything `f` wrote is undone.
/// Works in autocommit mode (the savepoint is then the transaction) and
/// inside a caller's transaction.
pub(crate) fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.execute_batch("SAVEPOINT taskq").map_err(db_error)?;
    match f(conn) {
        Ok(value) => {
            conn.execute_batch("RELEASE taskq").map_err(db_error)?;
            Ok(value)
        }
        Err(error) => {
            // If SQLite already rolled the transaction back, the savepoint
            // is gone and there is nothing left to undo.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK TO taskq; RELEASE taskq");
            }
            Err(error)
        }
    }
}

/// `task_insert.sql` for tasks without a unique key, and with one (see
/// the statement).
pub(super) static INSERT: LazyLock<String> =
    LazyLock::new(|| include_str!("sql/task_insert.sql").replace("{on_conflict}", ""));
pub(super) static INSERT_KEYED: LazyLock<String> = LazyLock::new(|| {
    include_str!("sql/task_insert.sql").replace("{on_conflict}", "ON CONFLICT DO NOTHING")
});

pub(crate) fn insert(
    conn: &Connection,
    now: i64,
    tasks: &[NewTask],
    mark: CachedMark,
) -> Result<Vec<Enqueued>> {
    // A completion without follow-ups comes here too: it inserts nothing.
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let graph = tasks.iter().any(|t| !t.options.depends_on.is_empty());
    if graph {
        crate::workflow::validate_batch(tasks)?;
    }
    let mut plain = conn.prepare_cached(&INSERT).map_err(db_error)?;
    let mut keyed = conn.prepare_cached(&INSERT_KEYED).map_err(db_error)?;
    let mut enqueued = Vec::with_capacity(tasks.len());
    let mut newest = None;
    for task in tasks {
        if graph && !task.options.depends_on.is_empty() {
            let added = super::dependencies::insert_dependent(conn, now, task, &enqueued)?;
            if !added.duplicate {
                newest = Some(added.id.0);
            }
            enqueued.push(added);
            continue;
        }
        let options = &task.options;
        let (not_before, slot) = times(now, task);
        let unique = options.unique.as_ref();
        let statement = if unique.is_some() {
            &mut keyed
        } else {
            &mut plain
        };
        let changed = statement
            .execute(params![
                task.action,
                task.payload,
                not_before,
                options.max_tries,
                micros::from_duration(options.timeout),
                options.parent.map(|p| p.0),
                now,
                options.priority,
                unique.map(|u| &u.key),
                unique.map_or(0, Unique::states_bits),
                slot,
                options.concurrency_key,
            ])
            .map_err(db_error)?;
        let inserted = (changed == 1).then(|| conn.last_insert_rowid());
        enqueued.push(match (inserted, unique) {
            (Some(id), _) => {
                newest = Some(id);
                Enqueued::new(TaskId(id))
            }
            (None, Some(unique)) => {
                Enqueued::duplicate_of(control::key_holder(conn, &task.action, &unique.key, slot)?)
            }
            (None, None) => {
                return Err(Error::other(
                    "an insert of a task without a unique key was refused",
                ))
            }
        });
    }
    if let Some(newest) = newest {
        adopt_if_due(conn, newest, mark)?;
    }
    Ok(enqueued)
}

/// When `task`, inserted at `now`, may first run, and the start of its
/// unique key's period window if it has one.
pub(super) fn times(now: i64, task: &NewTask) -> (i64, Option<i64>) {
    let options = &task.options;
    let not_before = match options.not_before {
        None => now,
        Some(NotBefore::Delay(delay)) => now.saturating_add(micros::from_duration(delay)),
        Some(NotBefore::At(at)) => micros::from_time(at),
    };
    let slot = options
        .unique
        .as_ref()
        .and_then(Unique::period_micros)
        .map(|period| window_start(now, period));
    (not_before, slot)
}

/// Inserts one task due at `now`, claimed at once when no other task of
/// its action is ready (see `Backend::task_insert_claimed`).
pub(crate) fn insert_claimed(
    conn: &Connection,
    now: i64,
    task: &NewTask,
    mark: CachedMark,
    worker: &WorkerId,
) -> Result<(Enqueued, Option<Task>)> {
    // A delayed task, one with a unique or concurrency key, or one with
    // an older task ready or its action paused or limited, is only queued.
    let queue_only = task.options.not_before.is_some()
        || task.options.unique.is_some()
        || !task.options.depends_on.is_empty()
        || task.options.concurrency_key.is_some()
        || conn
            .prepare_cached(include_str!("sql/task_any_ready.sql"))
            .and_then(|mut s| s.query_row(params![task.action, now], |row| row.get(0)))
            .map_err(db_error)?;
    if queue_only {
        let ids = insert(conn, now, std::slice::from_ref(task), mark)?;
        return Ok((ids[0], None));
    }
    let claimed = conn
        .prepare_cached(include_str!("sql/task_insert_claimed.sql"))
        .and_then(|mut s| {
            s.query_row(
                params![
                    task.action,
                    task.payload,
                    now,
                    task.options.max_tries,
                    micros::from_duration(task.options.timeout),
                    task.options.parent.map(|p| p.0),
                    task.options.priority,
                    worker.to_json(),
                ],
                read_task,
            )
        })
        .map_err(db_error)?;
    adopt_if_due(conn, claimed.id.0, mark)?;
    Ok((Enqueued::new(claimed.id), Some(claimed)))
}

pub(crate) fn requeue_expired(
    conn: &Connection,
    now: i64,
    action: Option<&str>,
    expiry: ExpiryBackoff,
) -> Result<u64> {
    let moved = conn
        .prepare_cached(include_str!("sql/task_requeue_expired.sql"))
        .and_then(|mut s| {
            s.execute(params![
                now,
                action,
                expiry.initial_micros,
                expiry.max_micros
            ])
        })
        .map_err(db_error)?;
    Ok(moved as u64)
}

pub(crate) fn claim(
    conn: &Connection,
    now: i64,
    action: &str,
    limit: u32,
    expiry: ExpiryBackoff,
    worker: &WorkerId,
) -> Result<Claimed> {
    requeue_expired(conn, now, Some(action), expiry)?;
    if let Some(claimed) = super::limits::claim(conn, now, action, limit, worker)? {
        return Ok(claimed);
    }
    let mut statement = conn
        .prepare_cached(include_str!("sql/task_claim.sql"))
        .map_err(db_error)?;
    let mut tasks = statement
        .query_map(params![now, action, limit, worker.to_json()], read_task)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db_error)?;
    // RETURNING gives no order; hand out the first first.
    tasks.sort_by_key(|task| (task.priority, task.not_before, task.id));
    Ok(Claimed::unlimited(tasks))
}

/// Runs a fenced single-row write; zero rows changed means the lease is lost.
fn fenced(
    conn: &Connection,
    sql: &str,
    lease: LeaseRef,
    params: &[&dyn rusqlite::ToSql],
) -> Result<()> {
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(db_error)?;
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::LeaseLost {
            id: lease.id,
            token: lease.token,
        })
    }
}

pub(crate) fn complete(
    conn: &Connection,
    now: i64,
    lease: LeaseRef,
    follow_ups: &[NewTask],
    (retain, result): (bool, Option<&[u8]>),
    mark: CachedMark,
) -> Result<Vec<Enqueued>> {
    if retain {
        fenced(
            conn,
            include_str!("sql/task_complete_retain.sql"),
            lease,
            params![lease.id.0, lease.token, now, result],
        )?;
    } else {
        fenced(
            conn,
            include_str!("sql/task_complete.sql"),
            lease,
            params![lease.id.0, lease.token],
        )?;
    }
    insert(conn, now, follow_ups, mark)
}

pub(crate) fn fail(
    conn: &Connection,
    now: i64,
    lease: LeaseRef,
    error: &str,
    to: FailTo,
) -> Result<State> {
    let (retry_after, ends) = match to {
        FailTo::Retry(after) => (Some(micros::from_duration(after)), State::Failed),
        FailTo::Fail => (None, State::Failed),
        FailTo::Cancel => (None, State::Cancelled),
    };
    fenced_to_state(
        conn,
        include_str!("sql/task_fail.sql"),
        lease,
        params![
            lease.id.0,
            lease.token,
            now,
            error,
            retry_after,
            ends.as_str()
        ],
    )
}

/// Runs a fenced single-row write that returns the task's new state; no
/// row means the lease is lost.
fn fenced_to_state(
    conn: &Connection,
    sql: &str,
    lease: LeaseRef,
    params: &[&dyn rusqlite::ToSql],
) -> Result<State> {
    let state: Option<String> = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row(params, |row| row.get(0)).optional())
        .map_err(db_error)?;
    match state {
        Some(state) => state.parse(),
        None => Err(Error::LeaseLost {
            id: lease.id,
            token: lease.token,
        }),
    }
}

pub(crate) fn extend(
    conn: &Connection,
    now: i64,
    lease: LeaseRef,
    by: Duration,
) -> Result<Extended> {
    let expires = now.saturating_add(micros::from_duration(by));
    let cancel_requested: Option<bool> = conn
        .prepare_cached(include_str!("sql/task_extend.sql"))
        .and_then(|mut s| {
            s.query_row(params![lease.id.0, lease.token, expires], |row| row.get(0))
                .optional()
        })
        .map_err(db_error)?;
    match cancel_requested {
        Some(cancel_requested) => Ok(Extended {
            expires: micros::to_time(expires),
            cancel_requested,
        }),
        None => Err(Error::LeaseLost {
            id: lease.id,
            token: lease.token,
        }),
    }
}

pub(crate) fn release(
    conn: &Connection,
    now: i64,
    lease: LeaseRef,
    delay: Duration,
) -> Result<State> {
    fenced_to_state(
        conn,
        include_str!("sql/task_release.sql"),
        lease,
        params![lease.id.0, lease.token, now, micros::from_duration(delay)],
    )
}

/// Whether the cancellation of the running task `id` was asked for.
pub(crate) fn cancel_asked(conn: &Connection, id: TaskId) -> Result<bool> {
    conn.prepare_cached(include_str!("sql/task_cancel_asked.sql"))
        .and_then(|mut s| {
            s.query_row(params![id.0], |row| row.get::<_, bool>(0))
                .optional()
        })
        .map(|asked| asked.unwrap_or(false))
        .map_err(db_error)
}

pub(crate) fn count_ready(conn: &Connection, now: i64, action: &str) -> Result<u64> {
    conn.prepare_cached(include_str!("sql/task_count_ready.sql"))
        .and_then(|mut s| s.query_row(params![action, now], |row| row.get::<_, i64>(0)))
        .map(|n| n as u64)
        .map_err(db_error)
}

pub(crate) fn stats(conn: &Connection) -> Result<Vec<ActionStats>> {
    let mut statement = conn
        .prepare_cached(include_str!("sql/task_stats.sql"))
        .map_err(db_error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db_error)?;
    let rows = rows
        .into_iter()
        .map(|(action, state, count)| Ok((action, state.parse()?, count.unsigned_abs())))
        .collect::<Result<Vec<_>>>()?;
    Ok(ActionStats::fold(rows))
}

/// Fills in the priorities of the queued tasks of each row of `stats`
/// that has any, and the earliest not-before time that has come by `now`
/// among them (two index seeks per priority).
pub(crate) fn add_priorities(conn: &Connection, now: i64, stats: &mut [ActionStats]) -> Result<()> {
    let mut statement = conn
        .prepare_cached(include_str!("sql/task_priorities.sql"))
        .map_err(db_error)?;
    for row in stats.iter_mut().filter(|row| row.queued > 0) {
        let found = statement
            .query_map(params![row.action, now], |found| {
                Ok((found.get::<_, i16>(0)?, found.get::<_, Option<i64>>(1)?))
            })
            .and_then(|found| found.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db_error)?;
        row.priorities = found.iter().map(|(p, _)| *p).collect();
        row.oldest_ready = found
            .iter()
            .filter_map(|(_, at)| *at)
            .min()
            .map(micros::to_time);
    }
    Ok(())
}

pub(crate) fn get(conn: &Connection, id: TaskId) -> Result<Option<Task>> {
    conn.prepare_cached(include_str!("sql/task_get.sql"))
        .and_then(|mut s| s.query_row(params![id.0], read_stored_task).optional())
        .map_err(db_error)
}

pub(super) fn state_of(conn: &Connection, id: TaskId) -> Result<Option<State>> {
    conn.prepare_cached(include_str!("sql/task_state.sql"))
        .and_then(|mut s| {
            s.query_row(params![id.0], |row| row.get::<_, String>(0))
                .optional()
        })
        .map_err(db_error)?
        .map(|state| state.parse())
        .transpose()
}

pub(crate) fn delete(conn: &Connection, now: i64, id: TaskId) -> Result<()> {
    conn.prepare_cached(include_str!("sql/task_abandon.sql"))
        .and_then(|mut s| s.execute(params![id.0, now]))
        .map_err(db_error)?;
    let changed = conn
        .prepare_cached(include_str!("sql/task_delete.sql"))
        .and_then(|mut s| s.execute(params![id.0]))
        .map_err(db_error)?;
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::TaskNotFound { id })
    }
}

pub(crate) fn purge(
    conn: &Connection,
    now: i64,
    (state, older_than): (State, Duration),
    limit: Option<u32>,
) -> Result<u64> {
    let cutoff = now.saturating_sub(micros::from_duration(older_than));
    // SQLite reads a negative limit as none.
    let limit = limit.map_or(-1, i64::from);
    conn.prepare_cached(include_str!("sql/task_purge.sql"))
        .and_then(|mut s| s.execute(params![state.as_str(), cutoff, limit]))
        .map(|n| n as u64)
        .map_err(db_error)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// SQLite's plan of `sql`, one line per step.
    pub(in crate::backend::sqlite) fn plan(
        conn: &Connection,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> String {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params, |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
            .join("\n")
    }

    /// An in-memory database with taskq's tables.
    pub(in crate::backend::sqlite) fn migrated() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        super::super::migrate::migrate(&conn).unwrap();
        conn
    }

    #[test]
    fn statements_over_many_tasks_read_only_what_they_need() {
        let conn = migrated();
        let purge = plan(
            &conn,
            include_str!("sql/task_purge.sql"),
            params!["failed", 0, 100],
        );
        assert!(
            purge.contains("INDEX taskq_tasks_finished"),
            "purge:\n{purge}"
        );
        // The tasks above the count mark, by id, never the queued ones.
        for (name, sql) in [
            ("stats", include_str!("sql/task_stats.sql")),
            ("adopt", include_str!("sql/task_counts_adopt.sql")),
        ] {
            let plan = plan(&conn, sql, []);
            assert!(plan.contains("PRIMARY KEY (rowid>?)"), "{name}:\n{plan}");
        }
        let ready = plan(
            &conn,
            include_str!("sql/task_count_ready.sql"),
            params!["a", 0],
        );
        assert!(
            ready.contains("PRIMARY KEY (rowid>?)"),
            "count_ready:\n{ready}"
        );
    }
}

#[cfg(test)]
mod prepare_tests {
    use super::*;
    use rusqlite::StatementStatus;

    #[test]
    fn hot_statements_are_not_prepared_again_on_each_run() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::migrate::migrate(&conn).unwrap();
        let worker = WorkerId::this_process(None);
        let tasks: Vec<NewTask> = (0..50).map(|n| NewTask::json("a", &n).unwrap()).collect();
        insert(&conn, 1, &tasks, None).unwrap();
        let expiry = ExpiryBackoff {
            initial_micros: 1,
            max_micros: 1,
        };
        for now in 2..40 {
            let claimed = claim(&conn, now, "a", 1, expiry, &worker).unwrap().tasks;
            let lease = LeaseRef {
                id: claimed[0].id,
                token: claimed[0].lease_token,
            };
            complete(&conn, now, lease, &[], (false, None), None).unwrap();
        }
        for sql in [
            include_str!("sql/task_claim.sql"),
            include_str!("sql/task_requeue_expired.sql"),
        ] {
            let statement = conn.prepare_cached(sql).unwrap();
            let again = statement.get_status(StatementStatus::RePrepare);
            assert!(again <= 1, "prepared again {again} times:\n{sql}");
        }
    }
}
