//! The count mark (schema version 3): tasks at or below it are counted in
//! `taskq_counts`; those above it, inserted since, are counted live by id
//! until an insert adopts them (see docs/backends.md).

use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::Connection;

use super::error::db_error;
use crate::error::Result;

/// How many tasks may wait above the count mark (counted live by `len`
/// and `stats`, see migration 0003) before an insert adopts them into the
/// kept counts.
pub(crate) const ADOPT_AT: i64 = 1_000;

/// Where an insert finds the count mark: the backend's copy (kept by its
/// writer; another process moving the mark only makes it adopt sooner, an
/// adoption rolled back with its batch only later, by at most
/// [`ADOPT_AT`] inserts), or `None` to read it from the database (calls on
/// the caller's connection).
pub(crate) type CachedMark<'a> = Option<&'a AtomicI64>;

/// The count mark as stored.
pub(crate) fn count_mark(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT counted_to FROM taskq_count_mark")
        .and_then(|mut s| s.query_row([], |row| row.get(0)))
        .map_err(db_error)
}

/// After inserting tasks up to id `newest`: when more than [`ADOPT_AT`]
/// wait above the mark, counts them into the kept counts and moves the
/// mark, in the caller's transaction.
pub(super) fn adopt_if_due(conn: &Connection, newest: i64, mark: CachedMark) -> Result<()> {
    let counted_to = match mark {
        Some(copy) => copy.load(Ordering::Relaxed),
        None => count_mark(conn)?,
    };
    if newest - counted_to <= ADOPT_AT {
        return Ok(());
    }
    conn.prepare_cached(include_str!("sql/task_counts_adopt.sql"))
        .and_then(|mut s| s.execute([]))
        .map_err(db_error)?;
    let moved: i64 = conn
        .prepare_cached(include_str!("sql/task_counts_mark_move.sql"))
        .and_then(|mut s| s.query_row([], |row| row.get(0)))
        .map_err(db_error)?;
    if let Some(copy) = mark {
        copy.store(moved, Ordering::Relaxed);
    }
    Ok(())
}

/// Adopts the tasks above the mark that inserts left there (tasks inserted
/// by hand or by other programs), when more than [`ADOPT_AT`] wait.
pub(crate) fn adopt_behind(conn: &Connection, mark: &AtomicI64) -> Result<()> {
    let newest: i64 = conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM taskq_tasks")
        .and_then(|mut s| s.query_row([], |row| row.get(0)))
        .map_err(db_error)?;
    adopt_if_due(conn, newest, Some(mark))
}
