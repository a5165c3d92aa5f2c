//! Enqueue and complete inside a diesel transaction, through taskq's
//! prepared statements (`taskq::prepared`): the adapter below is all a
//! driver needs, and the same shape works for diesel-async or sea-orm.
//!
//!     DATABASE_URL=postgres://localhost/app cargo run -p taskq --example diesel_enqueue --features postgres
//!
//! It adds a user and enqueues their welcome email in one transaction,
//! shows that a rolled-back transaction leaves neither, then claims the
//! email and completes it in another transaction with a follow-up task.

use std::sync::Arc;

use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Integer, Nullable, SmallInt, Text};
use taskq::prepared::{Answer, Expect, Prepared, Step, Value};
use taskq::{DatabaseError, DatabaseErrorKind, Enqueued, NewTask};

/// The `id` column of a step's rows.
#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Nullable<BigInt>)]
    id: Option<i64>,
}

/// Runs every step of `prepared` on `conn`, in the caller's transaction.
fn run(conn: &mut PgConnection, mut prepared: Prepared) -> Result<Vec<Enqueued>, taskq::Error> {
    while let Some(step) = prepared.next_step() {
        let answer = run_step(conn, step).map_err(database_error)?;
        prepared.answer(answer)?;
    }
    prepared.finish()
}

/// Binds a step's values in order, each as its PostgreSQL type, and reads
/// what the step expects.
fn run_step(conn: &mut PgConnection, step: Step) -> QueryResult<Answer> {
    let expect = step.expect();
    let (sql, values) = step.into_parts();
    let mut query = diesel::sql_query(sql).into_boxed::<Pg>();
    for value in values {
        query = match value {
            Value::Text(v) => query.bind::<Nullable<Text>, _>(v),
            Value::Bytes(v) => query.bind::<Nullable<Bytea>, _>(v),
            Value::Int8(v) => query.bind::<Nullable<BigInt>, _>(v),
            Value::Int4(v) => query.bind::<Nullable<Integer>, _>(v),
            Value::Int2(v) => query.bind::<Nullable<SmallInt>, _>(v),
            Value::TextArray(v) => query.bind::<Array<Nullable<Text>>, _>(v),
            Value::BytesArray(v) => query.bind::<Array<Bytea>, _>(v),
            Value::Int8Array(v) => query.bind::<Array<Nullable<BigInt>>, _>(v),
            Value::Int4Array(v) => query.bind::<Array<Integer>, _>(v),
            Value::Int2Array(v) => query.bind::<Array<SmallInt>, _>(v),
            other => {
                return Err(diesel::result::Error::SerializationError(
                    format!("no type for {other:?}").into(),
                ))
            }
        };
    }
    Ok(match expect {
        Expect::Ids => Answer::Ids(
            query
                .load::<Id>(conn)?
                .into_iter()
                .map(|row| row.id)
                .collect(),
        ),
        Expect::Count => Answer::Count(query.execute(conn)? as u64),
    })
}

/// A diesel error as taskq's, with the portable kind, its source kept.
fn database_error(error: diesel::result::Error) -> taskq::Error {
    use diesel::result::{DatabaseErrorKind as Kind, Error as Diesel};
    let kind = match &error {
        Diesel::DatabaseError(Kind::UniqueViolation, _) => DatabaseErrorKind::UniqueViolation,
        Diesel::DatabaseError(Kind::ReadOnlyTransaction, _) => DatabaseErrorKind::ReadOnly,
        Diesel::DatabaseError(Kind::SerializationFailure, _) => DatabaseErrorKind::Busy,
        Diesel::DatabaseError(Kind::ClosedConnection | Kind::UnableToSendCommand, _) => {
            DatabaseErrorKind::ConnectionLost
        }
        _ => DatabaseErrorKind::Other,
    };
    taskq::Error::Database(DatabaseError::new(
        kind,
        error.to_string(),
        Some(Arc::new(error)),
    ))
}

/// What the walk-through saw.
#[derive(Debug, PartialEq)]
struct Seen {
    users: i64,
    welcome: Enqueued,
    again: Enqueued,
    rolled_back: Enqueued,
    follow_up_parent: Option<taskq::TaskId>,
}

/// The walk-through, on the database at `url` with taskq's tables in
/// `schema`.
fn walk_through(url: &str, schema: &str) -> Result<Seen, Box<dyn std::error::Error>> {
    // taskq's own queue, here only to create its tables and to claim.
    let queue = taskq::blocking::Queue::connect(&format!("{url}?schema={schema}"))?;
    let mut conn = PgConnection::establish(url)?;
    let users = format!("{schema}.users");
    diesel::sql_query(format!(
        "CREATE TABLE IF NOT EXISTS {users} (name text NOT NULL)"
    ))
    .execute(&mut conn)?;

    // The user and the task commit together.
    let welcome = conn.transaction(|conn| {
        diesel::sql_query(format!("INSERT INTO {users} (name) VALUES ($1)"))
            .bind::<Text, _>("ada")
            .execute(conn)?;
        let task = NewTask::json("welcome-email", &"ada")?.unique_key("welcome:ada");
        let enqueued = run(conn, taskq::postgres::prepare_enqueue(schema, vec![task])?)?;
        Ok::<_, Box<dyn std::error::Error>>(enqueued[0])
    })?;

    // A second welcome for ada is a duplicate of the first (its unique
    // key is taken): it names the task that holds the key.
    let again = conn.transaction(|conn| {
        let task = NewTask::json("welcome-email", &"ada")?.unique_key("welcome:ada");
        let enqueued = run(conn, taskq::postgres::prepare_enqueue(schema, vec![task])?)?;
        Ok::<_, Box<dyn std::error::Error>>(enqueued[0])
    })?;

    // A transaction rolled back keeps neither.
    let mut rolled_back = None;
    let refused: Result<(), Box<dyn std::error::Error>> = conn.transaction(|conn| {
        diesel::sql_query(format!("INSERT INTO {users} (name) VALUES ($1)"))
            .bind::<Text, _>("bob")
            .execute(conn)?;
        let task = NewTask::json("welcome-email", &"bob")?;
        rolled_back = Some(run(conn, taskq::postgres::prepare_enqueue(schema, vec![task])?)?[0]);
        Err("the signup form was incomplete".into())
    });
    assert!(refused.is_err());

    // A worker's completion, with a follow-up, in the worker's transaction.
    let lease = queue
        .claim("welcome-email")?
        .ok_or("the welcome email is queued")?;
    let follow_up = NewTask::json("survey", &"ada")?;
    let done = conn.transaction(|conn| {
        let prepared =
            taskq::postgres::prepare_complete(schema, lease.as_async(), vec![follow_up])?;
        Ok::<_, Box<dyn std::error::Error>>(run(conn, prepared)?)
    })?;
    let users: i64 = diesel::dsl::sql::<BigInt>(&format!("SELECT count(*) FROM {users}"))
        .get_result(&mut conn)?;
    Ok(Seen {
        users,
        welcome,
        again,
        rolled_back: rolled_back.ok_or("enqueued before the rollback")?,
        follow_up_parent: queue.get(done[0].id)?.and_then(|task| task.parent),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL=postgres://...")?;
    let seen = walk_through(&url, "taskq")?;
    println!("{seen:#?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The walk-through against a real server (`./scripts/test` starts
    //! one and sets `TASKQ_TEST_POSTGRES_URL`).

    use super::*;

    #[test]
    fn the_walk_through_commits_rolls_back_and_completes() {
        let url = std::env::var("TASKQ_TEST_POSTGRES_URL")
            .expect("this test needs a server: run ./scripts/test, or set TASKQ_TEST_POSTGRES_URL");
        let schema = format!("diesel_{:08x}", std::process::id());
        let seen = walk_through(&url, &schema).unwrap();
        assert_eq!(seen.users, 1, "only the committed user");
        assert!(!seen.welcome.duplicate);
        assert!(seen.again.duplicate && seen.again.id == seen.welcome.id);
        assert_eq!(seen.follow_up_parent, Some(seen.welcome.id));
        let queue = taskq::blocking::Queue::connect(&format!("{url}?schema={schema}")).unwrap();
        assert!(
            queue.get(seen.rolled_back.id).unwrap().is_none(),
            "rolled back"
        );
        assert!(queue.get(seen.welcome.id).unwrap().is_none(), "completed");
        assert_eq!(queue.len("survey").unwrap(), 1);
    }

    #[test]
    fn a_diesel_error_reaches_the_caller_with_its_kind_and_source() {
        let url = std::env::var("TASKQ_TEST_POSTGRES_URL")
            .expect("this test needs a server: run ./scripts/test, or set TASKQ_TEST_POSTGRES_URL");
        let schema = format!("diesel_ro_{:08x}", std::process::id());
        taskq::blocking::Queue::connect(&format!("{url}?schema={schema}")).unwrap();
        let mut conn = PgConnection::establish(&url).unwrap();
        let task = NewTask::json("welcome-email", &"ada").unwrap();
        diesel::sql_query("BEGIN READ ONLY")
            .execute(&mut conn)
            .unwrap();
        let prepared = taskq::postgres::prepare_enqueue(&schema, vec![task]).unwrap();
        let error = run(&mut conn, prepared).unwrap_err();
        diesel::sql_query("ROLLBACK").execute(&mut conn).unwrap();
        let taskq::Error::Database(ref database) = error else {
            panic!("not a database error: {error:?}");
        };
        assert_eq!(database.kind, DatabaseErrorKind::ReadOnly, "{error}");
        let source = std::error::Error::source(&error).expect("a source");
        assert!(
            source.downcast_ref::<diesel::result::Error>().is_some(),
            "{source:?}"
        );
    }
}
