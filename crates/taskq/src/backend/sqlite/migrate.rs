//! Numbered, checksummed schema migrations, run under SQLite's write lock.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::db_error;
use crate::backend::migration::{checksum, pending, Migration};
use crate::error::{Error, Result};
use crate::micros;

/// Every migration, in order, numbered in step with the PostgreSQL
/// backend's (see [`Migration`]). Released migrations are never edited.
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
        name: "count_mark",
        sql: include_str!("migrations/0003_count_mark.sql"),
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
pub(crate) fn check_not_newer(conn: &Connection) -> Result<i64> {
    let found = schema_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// Applies the missing migrations. The caller holds an immediate (write)
/// transaction, so concurrent migrators run one after the other and the
/// second finds nothing left to do; nothing is applied unless it commits.
pub(crate) fn migrate(tx: &Connection) -> Result<()> {
    apply(tx, MIGRATIONS)
}

fn apply(tx: &Connection, migrations: &[Migration]) -> Result<()> {
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
    for migration in pending(migrations, &applied)? {
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applying migration"
        );
        tx.execute_batch(migration.sql).map_err(db_error)?;
        tx.execute(
                    "INSERT INTO taskq_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
                    params![migration.version, migration.name, checksum(migration.sql), micros::now()],
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
        crate::backend::migration::assert_numbered(MIGRATIONS, SCHEMA_VERSION);
    }

    fn counts(conn: &Connection, sql: &str) -> Vec<(String, String, i64)> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn tasks_counted_before_the_count_mark_stay_counted_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("taskq.db")).unwrap();
        apply(&conn, &MIGRATIONS[..2]).unwrap();
        // Version 2 counts every insert by trigger; the newest task is
        // gone, so the next id is above every remaining one.
        conn.execute_batch(
            "INSERT INTO taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, created_at)
                 VALUES ('a', x'7b7d', 'queued', 0, 1, 1, 0), ('a', x'7b7d', 'queued', 0, 1, 1, 0),
                        ('b', x'7b7d', 'queued', 0, 1, 1, 0), ('b', x'7b7d', 'queued', 0, 1, 1, 0);
             UPDATE taskq_tasks SET state = 'failed', finished_at = 1 WHERE id = 2;
             DELETE FROM taskq_tasks WHERE id = 4;",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let table = "SELECT action, state, count(*) FROM taskq_tasks GROUP BY action, state";
        let kept = "SELECT action, state, n FROM taskq_counts WHERE n > 0 ORDER BY action, state";
        assert_eq!(counts(&conn, kept), counts(&conn, table));
        assert_eq!(super::super::counts::count_mark(&conn).unwrap(), 3);
        // Changes to those tasks are still counted; a new one is not (it
        // is counted live, above the mark).
        conn.execute_batch(
            "UPDATE taskq_tasks SET state = 'running', expires = 1 WHERE id = 1;
             DELETE FROM taskq_tasks WHERE id = 3;
             INSERT INTO taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, created_at)
                 VALUES ('b', x'7b7d', 'queued', 0, 1, 1, 0);",
        )
        .unwrap();
        let below =
            "SELECT action, state, count(*) FROM taskq_tasks WHERE id <= 3 GROUP BY action, state";
        assert_eq!(counts(&conn, kept), counts(&conn, below));
        let stats: Vec<_> = super::super::statements::stats(&conn)
            .unwrap()
            .into_iter()
            .map(|row| (row.action.clone(), row.queued, row.running, row.failed))
            .collect();
        assert_eq!(
            stats,
            [("a".to_string(), 0, 1, 1), ("b".to_string(), 1, 0, 0)]
        );
    }

    #[tokio::test]
    async fn an_older_schema_is_refused_until_migrated() {
        use crate::backend::Backend;
        use crate::task::NewTask;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taskq.db");
        apply(&Connection::open(&path).unwrap(), &MIGRATIONS[..2]).unwrap();
        let config = super::super::SqliteConfig {
            migrate: false,
            ..Default::default()
        };
        let backend = super::super::SqliteBackend::open(&path, config)
            .await
            .unwrap();
        let too_old = |result: Result<()>| match result {
            Err(Error::SchemaTooOld { found, needed }) => (found, needed),
            other => panic!("expected SchemaTooOld, got {other:?}"),
        };
        let task = || NewTask::json("a", &1).unwrap();
        let inserted = backend.task_insert_many(vec![task()]).await.map(drop);
        assert_eq!(too_old(inserted), (2, SCHEMA_VERSION));
        assert_eq!(
            too_old(backend.task_stats().await.map(drop)),
            (2, SCHEMA_VERSION)
        );
        // Migrated by another process: noticed at the next operation.
        migrate(&Connection::open(&path).unwrap()).unwrap();
        backend.task_insert_many(vec![task()]).await.unwrap();
        assert_eq!(backend.task_stats().await.unwrap()[0].queued, 1);
    }
}
