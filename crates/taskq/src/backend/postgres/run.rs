//! How statements reach the server: prepared once per connection and
//! reused (the default), or, behind a pooler in transaction mode
//! (`PostgresConfig::prepared_statements: false`), unprepared.
//!
//! A pooler in transaction mode (PgBouncer's `pool_mode = transaction`
//! before version 1.21, and most hosted poolers) gives each transaction
//! whichever server connection is free, so a statement prepared in one
//! transaction is not there in the next, and one prepared outside a
//! transaction is gone before it runs. Unprepared, a statement goes out
//! as one message group (parse, bind, execute, sync, all unnamed) with
//! its parameter types, which the server needs to read binary values.
//! Those types are learned once per process and statement text: prepared
//! and closed inside a transaction of its own, on one server connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row, Statement};

use super::error::db_error;
use crate::error::Result;

/// A connection taskq runs statements on: a pooled client or one of its
/// transactions.
pub(super) trait Conn: Sync {
    /// The driver's client or transaction under it.
    type Pg: GenericClient + Sync;
    /// The driver's client or transaction.
    fn pg(&self) -> &Self::Pg;
    /// Whether a transaction is open on it (which keeps one server
    /// connection behind a pooler until it ends).
    fn in_transaction(&self) -> bool;
    /// `sql`, prepared once per connection.
    fn prepare_cached(
        &self,
        sql: &str,
    ) -> impl std::future::Future<Output = std::result::Result<Statement, tokio_postgres::Error>> + Send;
}

/// A pooled client, checked out (`Client`) or not (`ClientWrapper`, a
/// fresh connection for a repeat): no transaction open.
macro_rules! client_conn {
    ($($client:ty),*) => {$(
        impl Conn for $client {
            type Pg = tokio_postgres::Client;
            fn pg(&self) -> &Self::Pg {
                self
            }
            fn in_transaction(&self) -> bool {
                false
            }
            fn prepare_cached(
                &self,
                sql: &str,
            ) -> impl std::future::Future<Output = std::result::Result<Statement, tokio_postgres::Error>>
                   + Send {
                deadpool_postgres::ClientWrapper::prepare_cached(self, sql)
            }
        }
    )*};
}

client_conn!(deadpool_postgres::ClientWrapper, deadpool_postgres::Client);

impl<'a> Conn for deadpool_postgres::Transaction<'a> {
    type Pg = tokio_postgres::Transaction<'a>;
    fn pg(&self) -> &Self::Pg {
        self
    }
    fn in_transaction(&self) -> bool {
        true
    }
    fn prepare_cached(
        &self,
        sql: &str,
    ) -> impl std::future::Future<Output = std::result::Result<Statement, tokio_postgres::Error>> + Send
    {
        deadpool_postgres::Transaction::prepare_cached(self, sql)
    }
}

/// A statement ready to run: prepared, or its text with the types of its
/// parameters.
pub(super) enum Ready<'s> {
    Prepared(Statement),
    Unprepared { sql: &'s str, types: Arc<[Type]> },
}

/// How this backend runs statements, with the parameter types learned so
/// far when it does not prepare them.
#[derive(Debug)]
pub(super) struct Runner {
    /// `None`: statements are prepared once per connection.
    types: Option<Mutex<HashMap<String, Arc<[Type]>>>>,
}

impl Runner {
    /// A runner that prepares statements, or (`prepared: false`) sends
    /// them unprepared.
    pub(super) fn new(prepared: bool) -> Arc<Self> {
        Arc::new(Runner {
            types: (!prepared).then(Mutex::default),
        })
    }

    /// Whether statements go out unprepared: then two of them must not be
    /// sent together outside a transaction (a pooler may answer the second
    /// from another server connection).
    pub(super) fn unprepared(&self) -> bool {
        self.types.is_some()
    }

    /// `sql`, ready to run on `conn`.
    pub(super) async fn ready<'s, C: Conn>(&self, conn: &C, sql: &'s str) -> Result<Ready<'s>> {
        let Some(known) = &self.types else {
            return Ok(Ready::Prepared(
                conn.prepare_cached(sql).await.map_err(db_error)?,
            ));
        };
        let found = known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sql)
            .cloned();
        let types = match found {
            Some(types) => types,
            None => {
                let types = learn(conn, sql).await?;
                let mut known = known.lock().unwrap_or_else(|e| e.into_inner());
                known.insert(sql.to_owned(), Arc::clone(&types));
                types
            }
        };
        Ok(Ready::Unprepared { sql, types })
    }

    /// Runs `sql` on `conn` and returns its rows.
    pub(super) async fn query<C: Conn>(
        &self,
        conn: &C,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let ready = self.ready(conn, sql).await?;
        query(conn, &ready, params).await
    }

    /// Runs `sql` on `conn` and returns how many rows it changed.
    pub(super) async fn execute<C: Conn>(
        &self,
        conn: &C,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        let ready = self.ready(conn, sql).await?;
        execute(conn, &ready, params).await
    }
}

/// The parameter types of `sql`, from a statement prepared and closed on
/// one server connection: in the open transaction of `conn`, or in one of
/// its own.
async fn learn<C: Conn>(conn: &C, sql: &str) -> Result<Arc<[Type]>> {
    let pg = conn.pg();
    if conn.in_transaction() {
        let statement = pg.prepare(sql).await.map_err(db_error)?;
        return Ok(statement.params().into());
    }
    pg.batch_execute("BEGIN").await.map_err(db_error)?;
    let prepared = pg.prepare(sql).await;
    // Closed (on drop) before the transaction ends, on the same server
    // connection.
    let types: std::result::Result<Arc<[Type]>, _> = prepared.map(|s| s.params().into());
    let end = if types.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = pg.batch_execute(end).await.map_err(db_error);
    let types = types.map_err(db_error)?;
    ended?;
    Ok(types)
}

/// The parameters with their types, for an unprepared statement.
fn typed<'p>(
    params: &'p [&'p (dyn ToSql + Sync)],
    types: &'p [Type],
) -> impl ExactSizeIterator<Item = (&'p (dyn ToSql + Sync), Type)> + 'p {
    params.iter().copied().zip(types.iter().cloned())
}

/// Runs a ready statement and returns its rows.
pub(super) async fn query<C: Conn>(
    conn: &C,
    ready: &Ready<'_>,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    match ready {
        Ready::Prepared(statement) => conn.pg().query(statement, params).await.map_err(db_error),
        Ready::Unprepared { sql, types } => {
            let rows = conn.pg().query_typed_raw(sql, typed(params, types)).await;
            rows.map_err(db_error)?
                .try_collect()
                .await
                .map_err(db_error)
        }
    }
}

/// Runs a ready statement and returns how many rows it changed.
pub(super) async fn execute<C: Conn>(
    conn: &C,
    ready: &Ready<'_>,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64> {
    match ready {
        Ready::Prepared(statement) => conn.pg().execute(statement, params).await.map_err(db_error),
        Ready::Unprepared { sql, types } => {
            let rows = conn.pg().query_typed_raw(sql, typed(params, types)).await;
            let rows = rows.map_err(db_error)?;
            pin_mut!(rows);
            while rows.try_next().await.map_err(db_error)?.is_some() {}
            Ok(rows.rows_affected().unwrap_or(0))
        }
    }
}
