//! The transactional twins: enqueue and complete on the caller's own
//! connection or transaction (any [`tokio_postgres::GenericClient`]), so
//! that tasks commit or roll back with the caller's data. The backend's
//! own completion with follow-ups inserts them through the same path.

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, ToStatement};

use super::config::{channel, validate_schema};
use super::control;
use super::error::{db_error, lease_lost};
use super::run::Runner;
use super::statements::{InsertColumns, Sql};
use crate::error::Result;
use crate::task::{due_actions, follow_ups_of, CompletionRef, NewTask};
use crate::unique::Enqueued;

/// [`insert_and_notify`] in one of the backend's own transactions, with
/// its two statements prepared once per connection; behind a pooler
/// (unprepared), as text, which the transaction prepares and closes on the
/// one server connection it holds, as in a caller's own transaction.
pub(super) async fn insert_prepared(
    tx: &deadpool_postgres::Transaction<'_>,
    run: &Runner,
    sql: &Sql,
    channel: &str,
    tasks: &[NewTask],
) -> Result<Vec<Enqueued>> {
    let insert = sql.insert_for(tasks, true);
    if run.unprepared() {
        return insert_and_notify(&**tx, sql, (insert, sql.notify.as_str()), channel, tasks).await;
    }
    let insert = tx.prepare_cached(insert).await.map_err(db_error)?;
    let notify = tx.prepare_cached(&sql.notify).await.map_err(db_error)?;
    insert_and_notify(&**tx, sql, (&insert, &notify), channel, tasks).await
}

/// Inserts validated `tasks` and, for those due now, queues their wake-up
/// in the same transaction (delivered if it commits), sent together
/// (pipelined): one round trip, and one more to look up the holders of
/// duplicates' unique keys if there are any. `insert` and `notify` are
/// the statements `task_insert_many` and `task_notify`, as text or
/// prepared.
pub(super) async fn insert_and_notify<I, N>(
    client: &impl GenericClient,
    sql: &Sql,
    (insert, notify): (&I, &N),
    channel: &str,
    tasks: &[NewTask],
) -> Result<Vec<Enqueued>>
where
    I: ToStatement + ?Sized + Sync + Send,
    N: ToStatement + ?Sized + Sync + Send,
{
    if super::dependencies::is_graph(tasks) {
        return super::dependencies::insert_graph(client, sql, channel, tasks).await;
    }
    let columns = InsertColumns::new(tasks);
    let params = columns.params();
    let due = due_actions(tasks);
    let inserted = client.query(insert, &params);
    let notified = async {
        if due.is_empty() {
            return Ok(());
        }
        let params: [&(dyn ToSql + Sync); 2] = [&channel, &due];
        client.query(notify, &params).await.map(drop)
    };
    let (rows, notified) = tokio::join!(inserted, notified);
    let rows = rows.map_err(db_error)?;
    notified.map_err(db_error)?;
    match control::all_inserted(tasks, &rows)? {
        Ok(enqueued) => Ok(enqueued),
        Err(ids) => control::enqueued(client, sql, tasks, ids).await,
    }
}

/// The statement of [`counted_by_triggers_again`].
pub(super) const COUNTED_BY_TRIGGERS_AGAIN: &str = "SELECT set_config('taskq.tallied', '', true)";

/// Ends `taskq.tallied` for the rest of the caller's transaction: taskq's
/// statements set it so that the counting triggers leave their changes to
/// them, and the caller's own later changes to the tasks must be counted.
async fn counted_by_triggers_again(client: &impl GenericClient) -> Result<()> {
    client
        .batch_execute(COUNTED_BY_TRIGGERS_AGAIN)
        .await
        .map_err(db_error)
}

/// Enqueues one task on the caller's own connection or transaction, in the
/// taskq tables of `schema`: inside a transaction it commits or rolls back
/// with it. A task whose unique key another task holds is not added: the
/// result names that task, [marked as a duplicate](crate::Enqueued::duplicate).
pub async fn enqueue_in(
    client: &impl GenericClient,
    schema: &str,
    task: &NewTask,
) -> Result<Enqueued> {
    let ids = enqueue_many_in(client, schema, std::slice::from_ref(task)).await?;
    Ok(ids[0])
}

/// Enqueues many tasks on the caller's own connection or transaction, all
/// or none; says of each, in order, whether it was added or a duplicate.
pub async fn enqueue_many_in(
    client: &impl GenericClient,
    schema: &str,
    tasks: &[NewTask],
) -> Result<Vec<Enqueued>> {
    validate_schema(schema)?;
    tasks.iter().try_for_each(NewTask::validate)?;
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let sql = Sql::shared(schema);
    let channel = channel(schema);
    let ids = insert_and_notify(
        client,
        &sql,
        (sql.insert_for(tasks, true), sql.notify.as_str()),
        &channel,
        tasks,
    )
    .await?;
    // Only once the insert ran: it sets `taskq.tallied` itself.
    counted_by_triggers_again(client).await?;
    Ok(ids)
}

/// Completes a leased task on the caller's own transaction, with
/// follow-up tasks: the caller's writes, the completion and the follow-ups
/// commit together or not at all. Fenced like
/// [`Lease::complete`](crate::Lease::complete): if the lease was lost it
/// returns [`Error::LeaseLost`](crate::Error::LeaseLost) and writes nothing
/// (roll the transaction back then). Pass the `&Lease`.
pub async fn complete_in(
    client: &impl GenericClient,
    schema: &str,
    lease: impl Into<CompletionRef>,
    follow_ups: Vec<NewTask>,
) -> Result<Vec<Enqueued>> {
    validate_schema(schema)?;
    let CompletionRef { lease, retain } = lease.into();
    let follow_ups = follow_ups_of(lease.id, follow_ups)?;
    let sql = Sql::shared(schema);
    let changed = if retain {
        let none: Option<&[u8]> = None;
        let params: [&(dyn ToSql + Sync); 3] = [&lease.id.0, &lease.token, &none];
        client.execute(sql.complete_retain.as_str(), &params).await
    } else {
        let params: [&(dyn ToSql + Sync); 2] = [&lease.id.0, &lease.token];
        client.execute(sql.complete.as_str(), &params).await
    }
    .map_err(db_error)?;
    if changed != 1 {
        counted_by_triggers_again(client).await?;
        return Err(lease_lost(lease));
    }
    if follow_ups.is_empty() {
        counted_by_triggers_again(client).await?;
        return Ok(Vec::new());
    }
    enqueue_many_in(client, schema, &follow_ups).await
}
