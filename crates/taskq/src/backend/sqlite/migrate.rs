//! Numbered, checksummed schema migrations, run under SQLite's write lock.

use rusqlite::{params, Connection, OptionalExtension};

use super::store::{db_error, now_micros};
use crate::backend::migration::{checksum, pending, Migration};
use crate::error::{Error, Result};

/// Every migration, in order. Released migrations are never edited.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "create_tasks",
        sql: include_str!("migrations/0001_create_tasks.sql"),
    },
    Migration {
        version: 2,
        name: "count_tasks",
        sql: include_str!("migrations/0002_count_tasks.sql"),
    },
];

/// The schema version this build creates and needs.
pub const LATEST_VERSION: i64 = 2;

/// The newest applied migration, 0 for a database without taskq tables.
pub(crate) fn schema_version(conn: &Connection) -> Result<i64> {
    let has_table: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'taskq_migrations'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(db_error)?;
    if has_table.is_none() {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM taskq_migrations",
        [],
        |row| row.get(0),
    )
    .map_err(db_error)
}

/// Refuses a database migrated by a newer taskq.
pub(crate) fn check_not_newer(conn: &Connection) -> Result<()> {
    let found = schema_version(conn)?;
    if found > LATEST_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: LATEST_VERSION,
        });
    }
    Ok(())
}

/// Applies the missing migrations. The caller holds an immediate (write)
/// transaction, so concurrent migrators run one after the other and the
/// second finds nothing left to do; nothing is applied unless it commits.
pub(crate) fn migrate(tx: &Connection) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS taskq_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT    NOT NULL,
             checksum   INTEGER NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT",
    )
    .map_err(db_error)?;
    let applied: Vec<(i64, i64)> = tx
        .prepare("SELECT version, checksum FROM taskq_migrations ORDER BY version")
        .and_then(|mut s| {
            s.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .map_err(db_error)?;
    for migration in pending(MIGRATIONS, &applied)? {
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applying migration"
        );
        tx.execute_batch(migration.sql).map_err(db_error)?;
        tx.execute(
                    "INSERT INTO taskq_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
                    params![migration.version, migration.name, checksum(migration.sql), now_micros()],
                )
                .map_err(db_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_in_order_and_latest_matches() {
        crate::backend::migration::assert_numbered(MIGRATIONS, LATEST_VERSION);
    }
}
