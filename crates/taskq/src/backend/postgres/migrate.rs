//! Numbered, checksummed schema migrations, run under an advisory lock.

use tokio_postgres::GenericClient;

use super::{db_error, quote};
use crate::backend::migration::{checksum, pending, Migration};
use crate::error::{Error, Result};

/// Every migration, in order, numbered in step with the SQLite backend's
/// (see [`Migration`]): a number is the same schema version on both,
/// though what it does may differ (the third: each backend's own way of
/// counting inserts). Released migrations are never edited.
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
    Migration {
        version: 3,
        name: "uncounted_inserts",
        sql: include_str!("migrations/0003_uncounted_inserts.sql"),
    },
    Migration {
        version: 4,
        name: "control",
        sql: include_str!("migrations/0004_control.sql"),
    },
    Migration {
        version: 5,
        name: "dashboard",
        sql: include_str!("migrations/0005_dashboard.sql"),
    },
    Migration {
        version: 6,
        name: "schedules",
        sql: include_str!("migrations/0006_schedules.sql"),
    },
    Migration {
        version: 7,
        name: "limits",
        sql: include_str!("migrations/0007_limits.sql"),
    },
    Migration {
        version: 8,
        name: "churn",
        sql: include_str!("migrations/0008_churn.sql"),
    },
    Migration {
        version: 9,
        name: "results",
        sql: include_str!("migrations/0009_results.sql"),
    },
    Migration {
        version: 10,
        name: "dependencies",
        sql: include_str!("migrations/0010_dependencies.sql"),
    },
];

/// The schema version this build creates and needs: its newest migration.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The advisory lock that serializes migrations of one schema.
fn lock_key(schema: &str) -> i64 {
    checksum(&format!("taskq migrate {schema}"))
}

/// The newest applied migration, 0 where taskq was never migrated.
pub(crate) async fn schema_version(client: &impl GenericClient, schema: &str) -> Result<i64> {
    let table = format!("{}.taskq_migrations", quote(schema));
    // Typed and unprepared (one round trip, nothing left on the server):
    // the same behind a pooler in transaction mode as on a direct line.
    let exists = client
        .query_typed_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[(&table, tokio_postgres::types::Type::TEXT)],
        )
        .await
        .map_err(db_error)?
        .try_get::<_, bool>(0)
        .map_err(db_error)?;
    if !exists {
        return Ok(0);
    }
    let sql = format!("SELECT coalesce(max(version), 0) FROM {table}");
    client
        .query_typed_one(&sql, &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(db_error)
}

/// Refuses a schema migrated by a newer taskq; returns the version found.
pub(crate) async fn check_not_newer(client: &impl GenericClient, schema: &str) -> Result<i64> {
    let found = schema_version(client, schema).await?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// Creates the schema if needed and applies the missing migrations, all
/// in one transaction that first takes an advisory lock, so concurrent
/// migrators run one after the other.
pub(crate) async fn migrate(client: &mut tokio_postgres::Client, schema: &str) -> Result<()> {
    let quoted = quote(schema);
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .await
        .map_err(db_error)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted};
         CREATE TABLE IF NOT EXISTS {quoted}.taskq_migrations (
             version    bigint      PRIMARY KEY,
             name       text        NOT NULL,
             checksum   bigint      NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )"
    ))
    .await
    .map_err(db_error)?;
    let applied: Vec<(i64, i64)> = tx
        .query(
            &format!("SELECT version, checksum FROM {quoted}.taskq_migrations ORDER BY version"),
            &[],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(db_error)?;
    for migration in pending(MIGRATIONS, &applied)? {
        tracing::info!(
            version = migration.version,
            name = migration.name,
            schema,
            "applying migration"
        );
        tx.batch_execute(&migration.sql.replace("{schema}", &quoted))
            .await
            .map_err(db_error)?;
        tx.execute(
                    &format!(
                        "INSERT INTO {quoted}.taskq_migrations (version, name, checksum) VALUES ($1, $2, $3)"
                    ),
                    &[&migration.version, &migration.name, &checksum(migration.sql)],
                )
                .await
                .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)
}

#[cfg(feature = "testing")]
impl super::PostgresBackend {
    /// Drops this backend's schema and everything in it (a test database
    /// of `taskq::testing`), taking the migration lock first so that no
    /// migration of it runs meanwhile.
    pub(crate) async fn drop_schema(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&lock_key(&self.schema)],
        )
        .await
        .map_err(db_error)?;
        tx.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            quote(&self.schema)
        ))
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_in_order_and_latest_matches() {
        crate::backend::migration::assert_numbered(MIGRATIONS, SCHEMA_VERSION);
    }
}
