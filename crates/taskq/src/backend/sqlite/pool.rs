//! The read connections (opened on demand, kept for reuse), and how the
//! backend runs its operations: writes through the writer thread, reads on
//! a pooled connection on a blocking thread, each refused while the schema
//! is older than this build.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::config::{open_connection, SqliteConfig};
use super::error::db_error;
use super::{migrate, SqliteBackend};
use crate::error::{DatabaseError, DatabaseErrorKind, Error, Result};

/// Idle read connections, opened on demand.
#[derive(Debug)]
pub(super) struct ReadPool {
    pub(super) path: PathBuf,
    pub(super) config: SqliteConfig,
    pub(super) idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub(super) fn take(&self) -> Result<Connection> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = open_connection(&self.path, &self.config)?;
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(db_error)?;
        Ok(conn)
    }

    pub(super) fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.config.read_connections {
            idle.push(conn);
        }
    }
}

impl SqliteBackend {
    /// Fails with `SchemaTooOld` while the schema is older than this build
    /// (opened without migrating); one atomic load once it is current.
    pub(super) async fn refuse_if_behind(&self) -> Result<()> {
        if !self.behind.load(Ordering::Relaxed) {
            return Ok(());
        }
        let found = self.read_any(migrate::schema_version).await?;
        if found < migrate::SCHEMA_VERSION {
            return Err(Error::SchemaTooOld {
                found,
                needed: migrate::SCHEMA_VERSION,
            });
        }
        self.behind.store(false, Ordering::Relaxed);
        Ok(())
    }

    pub(super) async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.refuse_if_behind().await?;
        self.writer.write(op).await
    }

    /// A fenced write (one that names a lease token: a completion,
    /// failure, release or heartbeat), tried once more when the file stayed
    /// locked by another process past the busy timeout: SQLite refuses
    /// before it writes anything, so the first try changed nothing (and the
    /// token would make a repeat harmless even if it had). The twin of the
    /// PostgreSQL backend's repeat after a lost connection.
    pub(super) async fn fenced<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T> + Clone + Send + 'static,
    {
        match self.write(op.clone()).await {
            Err(error) if error.database_kind() == Some(DatabaseErrorKind::Busy) => {
                tracing::warn!(%error, "another process kept the SQLite file locked during a write; trying it once more");
                self.write(op).await
            }
            other => other,
        }
    }

    pub(super) async fn write_relaxed<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.refuse_if_behind().await?;
        self.writer.write_relaxed(op).await
    }

    pub(super) async fn read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.refuse_if_behind().await?;
        self.read_any(op).await
    }

    /// A read on a pooled connection, whatever the schema version.
    pub(super) async fn read_any<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let result = op(&conn);
            pool.give_back(conn);
            result
        })
        .await
        .map_err(|e| {
            Error::Database(DatabaseError::new(
                DatabaseErrorKind::Other,
                format!("a read failed on its thread: {e}"),
                None,
            ))
        })?
    }
}
