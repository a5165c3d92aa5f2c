//! The transactional twins: migrate, enqueue and complete on the caller's
//! own connection, inside the caller's transaction if one is open, so that
//! tasks commit or roll back with the caller's data.

use rusqlite::Connection;

use super::error::db_error;
use super::{migrate, statements};
use crate::error::Result;
use crate::micros;
use crate::task::{follow_ups_of, CompletionRef, NewTask};
use crate::unique::Enqueued;

/// Creates or upgrades taskq's tables on the caller's connection, in the
/// caller's transaction if one is open (otherwise in one of its own).
pub fn migrate_in(conn: &Connection) -> Result<()> {
    if conn.is_autocommit() {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db_error)?;
        let result = migrate::migrate(conn);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        conn.execute_batch(end).map_err(db_error)?;
        result
    } else {
        migrate::migrate(conn)
    }
}

/// Enqueues a task on the caller's connection, inside the caller's
/// transaction if one is open: the task commits or rolls back with it.
/// Start that transaction with `BEGIN IMMEDIATE`
/// ([`TransactionBehavior::Immediate`](rusqlite::TransactionBehavior::Immediate)) so it takes the write lock up front.
///
/// A task whose unique key another task holds is not added: the result
/// names that task, [marked as a duplicate](crate::Enqueued::duplicate).
pub fn enqueue_in(conn: &Connection, task: &NewTask) -> Result<Enqueued> {
    task.validate()?;
    statements::insert(conn, micros::now(), std::slice::from_ref(task), None).map(|ids| ids[0])
}

/// Enqueues many tasks on the caller's connection, all or none; says of
/// each, in order, whether it was added or a duplicate.
pub fn enqueue_many_in(conn: &Connection, tasks: &[NewTask]) -> Result<Vec<Enqueued>> {
    tasks.iter().try_for_each(NewTask::validate)?;
    statements::in_savepoint(conn, |conn| {
        statements::insert(conn, micros::now(), tasks, None)
    })
}

/// Completes a leased task on the caller's connection, with follow-up
/// tasks, inside the caller's transaction: the application's own writes,
/// the completion and the follow-ups commit together or not at all. The
/// lease is fenced as in [`Lease::complete`](crate::Lease::complete): if it was lost, this returns
/// [`Error::LeaseLost`](crate::Error::LeaseLost) and writes nothing.
pub fn complete_in(
    conn: &Connection,
    lease: impl Into<CompletionRef>,
    follow_ups: Vec<NewTask>,
) -> Result<Vec<Enqueued>> {
    let CompletionRef { lease, retain } = lease.into();
    let follow_ups = follow_ups_of(lease.id, follow_ups)?;
    statements::in_savepoint(conn, |conn| {
        statements::complete(
            conn,
            micros::now(),
            lease,
            &follow_ups,
            (retain, None),
            None,
        )
    })
}
