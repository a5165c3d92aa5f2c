//! The transactional twins for [sqlx](https://docs.rs/sqlx) 0.9 (feature
//! `sqlx`): enqueue and complete on the caller's own `PgConnection`, in
//! the caller's transaction (`&mut *tx`), through the steps of
//! [`crate::prepared`].
//!
//! ```no_run
//! # async fn example(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! use taskq::postgres::sqlx as taskq_sqlx;
//! use taskq::NewTask;
//!
//! let mut tx = pool.begin().await?;
//! sqlx::query("INSERT INTO users (name) VALUES ($1)").bind("ada").execute(&mut *tx).await?;
//! taskq_sqlx::enqueue_in(&mut tx, "taskq", &NewTask::json("welcome-email", &"ada")?).await?;
//! tx.commit().await?; // the user and the task commit together
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use sqlx::postgres::{PgArguments, PgConnection, Postgres};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Connection, Row};
use tokio_postgres::error::SqlState;

use super::error::{kind_of, schema_missing};
use super::prepared::{prepare_complete, prepare_enqueue};
use super::SCHEMA_VERSION;
use crate::error::{DatabaseError, DatabaseErrorKind, Error, Result};
use crate::prepared::{Answer, Expect, Prepared, Step, Value};
use crate::task::{CompletionRef, NewTask};
use crate::unique::Enqueued;

/// Enqueues one task on the caller's connection or transaction, in the
/// taskq tables of `schema`; the same as the `tokio-postgres` twin
/// [`enqueue_in`](super::enqueue_in).
pub async fn enqueue_in(conn: &mut PgConnection, schema: &str, task: &NewTask) -> Result<Enqueued> {
    let ids = enqueue_many_in(conn, schema, std::slice::from_ref(task)).await?;
    Ok(ids[0])
}

/// Enqueues many tasks on the caller's connection or transaction, all or
/// none; says of each, in order, whether it was added or a duplicate.
pub async fn enqueue_many_in(
    conn: &mut PgConnection,
    schema: &str,
    tasks: &[NewTask],
) -> Result<Vec<Enqueued>> {
    let prepared = prepare_enqueue(schema, tasks.to_vec())?;
    run_all(conn, prepared).await
}

/// Completes a leased task on the caller's transaction with follow-up
/// tasks, fenced like [`Lease::complete`](crate::Lease::complete): if the
/// lease was lost it returns [`Error::LeaseLost`]
/// (roll the transaction back then). Pass the `&Lease`.
pub async fn complete_in(
    conn: &mut PgConnection,
    schema: &str,
    lease: impl Into<CompletionRef>,
    follow_ups: Vec<NewTask>,
) -> Result<Vec<Enqueued>> {
    let prepared = prepare_complete(schema, lease, follow_ups)?;
    run_all(conn, prepared).await
}

/// Runs the steps in a transaction of their own, or a savepoint of the
/// caller's transaction, so that they are all or nothing either way.
async fn run_all(conn: &mut PgConnection, prepared: Prepared) -> Result<Vec<Enqueued>> {
    let mut tx = conn.begin().await.map_err(sqlx_error)?;
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
async fn run(conn: &mut PgConnection, step: Step) -> Result<Answer> {
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

/// Binds one value as its PostgreSQL type.
fn bind(
    query: Query<'_, Postgres, PgArguments>,
    value: Value,
) -> Result<Query<'_, Postgres, PgArguments>> {
    Ok(match value {
        Value::Text(v) => query.bind(v),
        Value::Bytes(v) => query.bind(v),
        Value::Int8(v) => query.bind(v),
        Value::Int4(v) => query.bind(v),
        Value::Int2(v) => query.bind(v),
        Value::TextArray(v) => query.bind(v),
        Value::BytesArray(v) => query.bind(v),
        Value::Int8Array(v) => query.bind(v),
        Value::Int4Array(v) => query.bind(v),
        Value::Int2Array(v) => query.bind(v),
    })
}

/// Turns a sqlx error into taskq's, with the portable kind of the
/// server's error code.
pub(crate) fn sqlx_error(error: sqlx::Error) -> Error {
    let kind = match &error {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|code| SqlState::from_code(&code));
            if code
                .as_ref()
                .is_some_and(|code| schema_missing(code, db.message()))
            {
                return Error::SchemaTooOld {
                    found: 0,
                    needed: SCHEMA_VERSION,
                };
            }
            code.as_ref().map_or(DatabaseErrorKind::Other, kind_of)
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
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
