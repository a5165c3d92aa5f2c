//! Dependencies between tasks on PostgreSQL: inserting a batch in which
//! tasks wait for others, reading a task's links, and waiting again after
//! a retry. What happens when a task with dependents ends is in the
//! triggers of migration 0010, so that every writer (the twins, other
//! SQL) keeps the graph right.

use std::collections::HashMap;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::control::{self, holders, INSERT_AGAIN};
use super::error::db_error;
use super::statements::{InsertColumns, Sql};
use crate::error::{Error, Result};
use crate::names::TaskId;
use crate::state::State;
use crate::task::{due_actions, NewTask};
use crate::unique::Enqueued;
use crate::workflow::{outcome_of, resolve, validate_batch, Links, Start};

/// The statements of dependencies, with the schema filled in.
#[derive(Debug)]
pub(super) struct DependencySql {
    mark: String,
    insert: String,
    edges: String,
    reopen: String,
    cancelled: String,
    rewait: String,
    links: String,
    pub(super) abandon: String,
}

impl DependencySql {
    pub(super) fn new(fill: impl Fn(&str) -> String) -> Self {
        DependencySql {
            mark: fill(include_str!("sql/dependency_mark.sql")),
            insert: fill(include_str!("sql/task_insert_dependent.sql")),
            edges: fill(include_str!("sql/dependency_insert.sql")),
            reopen: fill(include_str!("sql/dependency_reopen.sql")),
            cancelled: fill(include_str!("sql/dependency_cancelled.sql")),
            rewait: fill(include_str!("sql/task_rewait.sql")),
            links: fill(include_str!("sql/dependency_links.sql")),
            abandon: fill(include_str!("sql/task_abandon.sql")),
        }
    }
}

/// Whether a batch has tasks that wait for others, and so goes through
/// [`insert_graph`].
pub(super) fn is_graph(tasks: &[NewTask]) -> bool {
    tasks.iter().any(|task| !task.options.depends_on.is_empty())
}

/// Inserts a batch in which some tasks depend on others, all or none: in
/// a savepoint of the caller's transaction, or in a transaction of its
/// own when `client` is in none. The tasks without dependencies go in
/// runs through the batch insert; each one with dependencies after them.
/// Wakes the actions of the tasks due now (a waiting one's wake-up comes
/// with the completion that queues it).
pub(super) async fn insert_graph(
    client: &impl GenericClient,
    sql: &Sql,
    channel: &str,
    tasks: &[NewTask],
) -> Result<Vec<Enqueued>> {
    validate_batch(tasks)?;
    let own = match client.batch_execute("SAVEPOINT taskq_graph").await {
        Ok(()) => false,
        Err(error) if error.code() == Some(&SqlState::NO_ACTIVE_SQL_TRANSACTION) => {
            client.batch_execute("BEGIN").await.map_err(db_error)?;
            true
        }
        Err(error) => return Err(db_error(error)),
    };
    let inserted = insert_in_order(client, sql, channel, tasks).await;
    let end = match (&inserted, own) {
        (Ok(_), false) => "RELEASE SAVEPOINT taskq_graph",
        (Ok(_), true) => "COMMIT",
        (Err(_), false) => "ROLLBACK TO SAVEPOINT taskq_graph; RELEASE SAVEPOINT taskq_graph",
        (Err(_), true) => "ROLLBACK",
    };
    let ended = client.batch_execute(end).await.map_err(db_error);
    let inserted = inserted?;
    ended?;
    Ok(inserted)
}

async fn insert_in_order(
    client: &impl GenericClient,
    sql: &Sql,
    channel: &str,
    tasks: &[NewTask],
) -> Result<Vec<Enqueued>> {
    let mut enqueued: Vec<Enqueued> = Vec::with_capacity(tasks.len());
    let mut at = 0;
    while at < tasks.len() {
        if !tasks[at].options.depends_on.is_empty() {
            let added = insert_dependent(client, sql, &tasks[at], &enqueued).await?;
            enqueued.push(added);
            at += 1;
            continue;
        }
        let end = (at..tasks.len())
            .find(|&i| !tasks[i].options.depends_on.is_empty())
            .unwrap_or(tasks.len());
        let run = &tasks[at..end];
        let columns = InsertColumns::new(run);
        let rows = client
            .query(sql.insert_for(run, true), &columns.params())
            .await
            .map_err(db_error)?;
        match control::all_inserted(run, &rows)? {
            Ok(added) => enqueued.extend(added),
            Err(ids) => enqueued.extend(control::enqueued(client, sql, run, ids).await?),
        }
        at = end;
    }
    let due = due_actions(tasks);
    if !due.is_empty() {
        let params: [&(dyn ToSql + Sync); 2] = [&channel, &due];
        client.query(&sql.notify, &params).await.map_err(db_error)?;
    }
    Ok(enqueued)
}

/// Inserts `task`, which has dependencies, after the tasks of its batch
/// before it (`earlier`): locks and marks its dependencies, starts it
/// waiting, queued or cancelled from their states, and records its edges.
async fn insert_dependent(
    client: &impl GenericClient,
    sql: &Sql,
    task: &NewTask,
    earlier: &[Enqueued],
) -> Result<Enqueued> {
    let ids = resolve(task, earlier)?;
    let rows = client
        .query(&sql.dependencies.mark, &[&ids])
        .await
        .map_err(db_error)?;
    let mut states = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get(0).map_err(db_error)?;
        let state: String = row.try_get(1).map_err(db_error)?;
        states.insert(id, state.parse::<State>()?);
    }
    let found: Vec<(i64, Option<State>)> = ids
        .iter()
        .map(|id| (*id, states.get(id).copied()))
        .collect();
    let options = &task.options;
    let start = Start::of(&found, options.run_if_dependencies_fail);
    let one = std::slice::from_ref(task);
    let columns = InsertColumns::new(one);
    let state = start.state.as_str();
    let count = found.len() as i32;
    let mut params: Vec<&(dyn ToSql + Sync)> = columns.params_of(0).to_vec();
    params.extend([
        &state as &(dyn ToSql + Sync),
        &start.waiting_on,
        &count,
        &options.run_if_dependencies_fail,
        &start.reason,
    ]);
    for _ in 0..INSERT_AGAIN {
        let rows = client
            .query(&sql.dependencies.insert, &params)
            .await
            .map_err(db_error)?;
        if let Some(row) = rows.first() {
            let id: i64 = row.try_get(0).map_err(db_error)?;
            let outcomes: Vec<Option<&str>> =
                found.iter().map(|(_, state)| outcome_of(*state)).collect();
            let edge_params: [&(dyn ToSql + Sync); 3] = [&ids, &id, &outcomes];
            client
                .execute(&sql.dependencies.edges, &edge_params)
                .await
                .map_err(db_error)?;
            return Ok(Enqueued::new(TaskId(id)));
        }
        if options.unique.is_none() {
            return Err(Error::other(
                "an insert of a task without a unique key was refused",
            ));
        }
        if let Some(holder) = holders(client, sql, one, &[0]).await?[0] {
            return Ok(Enqueued::duplicate_of(holder));
        }
    }
    Err(Error::other(
        "a task's unique key stayed taken, but no task was found holding it",
    ))
}

impl super::PostgresBackend {
    /// The dependencies and dependents of `id`, read through the runner
    /// (which knows whether a pooler stands between), once more on a fresh
    /// connection if the first turned out dead.
    pub(super) async fn links(&self, id: TaskId) -> Result<Links> {
        let id = id.0;
        let rows = self
            .read(|| async move { self.query(&self.sql.dependencies.links, &[&id]).await })
            .await?;
        links_of(&rows)
    }
}

/// The dependencies and dependents a task's `dependency_links.sql` rows
/// name.
fn links_of(rows: &[tokio_postgres::Row]) -> Result<Links> {
    let mut links = Links::default();
    for row in rows {
        let read = || -> std::result::Result<_, tokio_postgres::Error> {
            Ok((
                row.try_get::<_, i32>(0)?,
                row.try_get::<_, i64>(1)?,
                row.try_get::<_, Option<String>>(2)?,
                row.try_get::<_, Option<String>>(3)?,
                row.try_get::<_, Option<String>>(4)?,
            ))
        };
        let (kind, other, action, state, outcome) = read().map_err(db_error)?;
        links.add_row(kind.into(), other, (action, state), outcome)?;
    }
    Ok(links)
}

/// After `id` was queued again: its waiting dependents wait for it again,
/// and, `with_dependents`, so do the dependents it had cancelled (those
/// that can run: see `dependency_cancelled.sql`), down the graph.
pub(super) async fn reopen(
    client: &impl GenericClient,
    sql: &Sql,
    id: TaskId,
    with_dependents: bool,
) -> Result<()> {
    let mut frontier = vec![id.0];
    while let Some(task) = frontier.pop() {
        client
            .execute(&sql.dependencies.reopen, &[&task])
            .await
            .map_err(db_error)?;
        if !with_dependents {
            continue;
        }
        let rows = client
            .query(&sql.dependencies.cancelled, &[&task])
            .await
            .map_err(db_error)?;
        for row in &rows {
            let dependent: i64 = row.try_get(0).map_err(db_error)?;
            client
                .execute(&sql.dependencies.rewait, &[&dependent])
                .await
                .map_err(db_error)?;
            frontier.push(dependent);
        }
    }
    Ok(())
}
