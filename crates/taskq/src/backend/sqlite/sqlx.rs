//! The transactional twins for [sqlx](https://docs.rs/sqlx) 0.9 (feature
//! `sqlx`): enqueue and complete on the caller's own `SqliteConnection`,
//! in the caller's transaction (`&mut *tx`), through the steps of
//! [`crate::prepared`].
//!
//! sqlx's SQLite and taskq's `rusqlite` link the same bundled SQLite
//! (`libsqlite3-sys` 0.35), so one program can hold both. Open the
//! caller's transaction with `BEGIN IMMEDIATE`
//! (`conn.begin_with("BEGIN IMMEDIATE")`) so it takes the write lock up
//! front, as for the `rusqlite` twins; taskq's own writer and the caller's
//! connection then wait for each other within their busy timeouts.
//!
//! ```no_run
//! # async fn example(pool: sqlx::SqlitePool) -> Result<(), Box<dyn std::error::Error>> {
//! use sqlx::Connection;
//! use taskq::sqlite::sqlx as taskq_sqlx;
//! use taskq::NewTask;
//!
//! let mut conn = pool.acquire().await?;
//! let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
//! sqlx::query("INSERT INTO users (name) VALUES (?1)").bind("ada").execute(&mut *tx).await?;
//! taskq_sqlx::enqueue_in(&mut tx, &NewTask::json("welcome-email", &"ada")?).await?;
//! tx.commit().await?; // the user and the task commit together
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteConnection};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::error::{kind_of, schema_missing};
use super::migrate::SCHEMA_VERSION;
use super::prepared::{prepare_complete, prepare_enqueue};
use crate::error::{DatabaseError, DatabaseErrorKind, Error, Result};
use crate::prepared::{Answer, Expect, Prepared, Step, Value};
use crate::task::{CompletionRef, NewTask};
use crate::unique::Enqueued;

/// Enqueues one task on the caller's connection or transaction; the same
/// as the `rusqlite` twin [`enqueue_in`](super::enqueue_in).
pub async fn enqueue_in(conn: &mut SqliteConnection, task: &NewTask) -> Result<Enqueued> {
    let ids = enqueue_many_in(conn, std::slice::from_ref(task)).await?;
    Ok(ids[0])
}

/// Enqueues many tasks on the caller's connection or transaction, all or
/// none; says of each, in order, whether it was added or a duplicate.
pub async fn enqueue_many_in(
    conn: &mut SqliteConnection,
    tasks: &[NewTask],
) -> Result<Vec<Enqueued>> {
    let prepared = prepare_enqueue(tasks.to_vec())?;
    run_all(conn, prepared).await
}

/// Completes a leased task on the caller's transaction with follow-up
/// tasks, fenced like [`Lease::complete`](crate::Lease::complete): if the
/// lease was lost it returns [`Error::LeaseLost`]
/// and writes nothing. Pass the `&Lease`.
pub async fn complete_in(
    conn: &mut SqliteConnection,
    lease: impl Into<CompletionRef>,
    follow_ups: Vec<NewTask>,
) -> Result<Vec<Enqueued>> {
    let prepared = prepare_complete(lease, follow_ups)?;
    run_all(conn, prepared).await
}

/// Runs the steps in a transaction of their own (taking the write lock up
/// front), or a savepoint of the caller's, so that they are all or
/// nothing either way.
async fn run_all(conn: &mut SqliteConnection, prepared: Prepared) -> Result<Vec<Enqueued>> {
    let mut tx = if conn.is_in_transaction() {
        conn.begin().await
    } else {
        conn.begin_with("BEGIN IMMEDIATE").await
    }
    .map_err(sqlx_error)?;
    let mut prepared = prepared;
    while let Some(step) = prepared.next_step() {
        let answer = run(&mut tx, step).await?;
        prepared.answer(answer)?;
    }
    let enqueued = prepared.finish()?;
    tx.commit().await.map_err(sqlx_error)?;
    Ok(enqueued)
}

/// Runs one step and reads what it expects.
async fn run(conn: &mut SqliteConnection, step: Step) -> Result<Answer> {
    let expect = step.expect();
    let (sql, params) = step.into_parts();
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for value in params {
        query = bind(query, value)?;
    }
    match expect {
        Expect::Count => {
            let done = query.execute(&mut *conn).await.map_err(sqlx_error)?;
            Ok(Answer::Count(done.rows_affected()))
        }
        Expect::Ids => {
            let rows = query.fetch_all(&mut *conn).await.map_err(sqlx_error)?;
            let ids = rows.iter().map(|row| row.try_get::<Option<i64>, _>("id"));
            Ok(Answer::Ids(
                ids.collect::<Result<_, _>>().map_err(sqlx_error)?,
            ))
        }
    }
}

/// Binds one value as its SQLite type (SQLite's steps have no arrays).
fn bind(
    query: Query<'_, Sqlite, SqliteArguments>,
    value: Value,
) -> Result<Query<'_, Sqlite, SqliteArguments>> {
    Ok(match value {
        Value::Text(v) => query.bind(v),
        Value::Bytes(v) => query.bind(v),
        Value::Int8(v) => query.bind(v),
        Value::Int4(v) => query.bind(v),
        Value::Int2(v) => query.bind(v),
        other => {
            return Err(Error::other(format!(
                "SQLite has no parameter type for {other:?}"
            )))
        }
    })
}

/// Turns a sqlx error into taskq's, with the portable kind of SQLite's
/// extended error code.
pub(crate) fn sqlx_error(error: sqlx::Error) -> Error {
    let kind = match &error {
        sqlx::Error::Database(db) => {
            if schema_missing(db.message()) {
                return Error::SchemaTooOld {
                    found: 0,
                    needed: SCHEMA_VERSION,
                };
            }
            let code = db.code().and_then(|code| code.parse::<i32>().ok());
            code.map_or(DatabaseErrorKind::Other, |code| {
                kind_of(&rusqlite::ffi::Error::new(code))
            })
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => DatabaseErrorKind::ConnectionLost,
        _ => DatabaseErrorKind::Other,
    };
    Error::Database(DatabaseError::new(
        kind,
        error.to_string(),
        Some(Arc::new(error)),
    ))
}
