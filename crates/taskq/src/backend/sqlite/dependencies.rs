//! Dependencies between tasks on SQLite: inserting a task that waits for
//! others, reading a task's links, and waiting again after a retry. What
//! happens when a task with dependents ends is in the triggers of
//! migration 0010, so that every writer (the twins, other SQL) keeps the
//! graph right.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::micros;
use crate::names::TaskId;
use crate::state::State;
use crate::task::NewTask;
use crate::unique::{Enqueued, Unique};
use crate::workflow::{outcome_of, resolve, Links, Start};

use super::control;
use super::error::db_error;
use super::statements::times;

/// Inserts `task`, which has dependencies, after the tasks of its batch
/// before it (`earlier`): marks each dependency as having dependents,
/// reads its state, starts the task waiting, queued or cancelled
/// accordingly, and records its edges. A task whose unique key another
/// holds is not inserted, and its entry names the holder.
pub(super) fn insert_dependent(
    conn: &Connection,
    now: i64,
    task: &NewTask,
    earlier: &[Enqueued],
) -> Result<Enqueued> {
    let ids = resolve(task, earlier)?;
    let mut mark = conn
        .prepare_cached(include_str!("sql/dependency_mark.sql"))
        .map_err(db_error)?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let state: Option<String> = mark
            .query_row(params![id], |row| row.get(0))
            .optional()
            .map_err(db_error)?;
        found.push((id, state.map(|s| s.parse::<State>()).transpose()?));
    }
    let options = &task.options;
    let start = Start::of(&found, options.run_if_dependencies_fail);
    let (not_before, slot) = times(now, task);
    let unique = options.unique.as_ref();
    let changed = conn
        .prepare_cached(include_str!("sql/task_insert_dependent.sql"))
        .and_then(|mut s| {
            s.execute(params![
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
                start.state.as_str(),
                start.waiting_on,
                found.len() as i64,
                options.run_if_dependencies_fail,
                start.reason,
            ])
        })
        .map_err(db_error)?;
    if changed != 1 {
        let unique = unique
            .ok_or_else(|| Error::other("an insert of a task without a unique key was refused"))?;
        let holder = control::key_holder(conn, &task.action, &unique.key, slot)?;
        return Ok(Enqueued::duplicate_of(holder));
    }
    let id = conn.last_insert_rowid();
    let mut edge = conn
        .prepare_cached(include_str!("sql/dependency_insert.sql"))
        .map_err(db_error)?;
    for (depends_on, state) in found {
        edge.execute(params![depends_on, id, outcome_of(state)])
            .map_err(db_error)?;
    }
    Ok(Enqueued::new(TaskId(id)))
}

/// The dependencies and dependents of `id`.
pub(super) fn links(conn: &Connection, id: TaskId) -> Result<Links> {
    let mut statement = conn
        .prepare_cached(include_str!("sql/dependency_links.sql"))
        .map_err(db_error)?;
    let rows = statement
        .query_map(params![id.0], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db_error)?;
    let mut links = Links::default();
    for (kind, other, action, state, outcome) in rows {
        links.add_row(kind, other, (action, state), outcome)?;
    }
    Ok(links)
}

/// After `id` was queued again: its waiting dependents wait for it again,
/// and, `with_dependents`, so do the dependents it had cancelled (those
/// that can run: see `dependency_cancelled.sql`), down the graph.
pub(super) fn reopen(conn: &Connection, id: TaskId, with_dependents: bool) -> Result<()> {
    let mut frontier = vec![id.0];
    while let Some(task) = frontier.pop() {
        for sql in [
            include_str!("sql/dependency_reopen_waiting.sql"),
            include_str!("sql/dependency_reopen_edges.sql"),
        ] {
            conn.prepare_cached(sql)
                .and_then(|mut s| s.execute(params![task]))
                .map_err(db_error)?;
        }
        if !with_dependents {
            continue;
        }
        let cancelled = conn
            .prepare_cached(include_str!("sql/dependency_cancelled.sql"))
            .and_then(|mut s| {
                s.query_map(params![task], |row| row.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db_error)?;
        for dependent in cancelled {
            conn.prepare_cached(include_str!("sql/dependency_rewait_edge.sql"))
                .and_then(|mut s| s.execute(params![dependent]))
                .and_then(|_| {
                    conn.prepare_cached(include_str!("sql/task_rewait.sql"))?
                        .execute(params![dependent])
                })
                .map_err(db_error)?;
            frontier.push(dependent);
        }
    }
    Ok(())
}
