//! The throughput history: the tries workers ended, per minute and
//! action (migration 0005).

use rusqlite::{params, Connection};

use super::error::db_error;
use crate::error::Result;
use crate::throughput::{minute_at, Throughput};

/// Adds `rows` to the history and removes the minutes before `keep_from`
/// (Unix seconds), in the caller's transaction.
pub(crate) fn add(conn: &Connection, rows: &[Throughput], keep_from: i64) -> Result<()> {
    let mut add = conn
        .prepare_cached(include_str!("sql/throughput_add.sql"))
        .map_err(db_error)?;
    for row in rows {
        add.execute(params![
            crate::throughput::minute_of(row.minute),
            row.action,
            count(row.completed),
            count(row.retried),
            count(row.failed),
        ])
        .map_err(db_error)?;
    }
    conn.prepare_cached(include_str!("sql/throughput_prune.sql"))
        .and_then(|mut s| s.execute(params![keep_from]))
        .map_err(db_error)?;
    Ok(())
}

/// The history from the minute `since` (Unix seconds) on.
pub(crate) fn since(conn: &Connection, since: i64) -> Result<Vec<Throughput>> {
    conn.prepare_cached(include_str!("sql/throughput_since.sql"))
        .and_then(|mut s| {
            s.query_map(params![since], |row| {
                Ok(Throughput {
                    minute: minute_at(row.get(0)?),
                    action: row.get(1)?,
                    completed: row.get::<_, i64>(2)?.unsigned_abs(),
                    retried: row.get::<_, i64>(3)?.unsigned_abs(),
                    failed: row.get::<_, i64>(4)?.unsigned_abs(),
                })
            })?
            .collect()
        })
        .map_err(db_error)
}

/// A count as SQLite stores it.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::statements::tests::{migrated, plan};
    use super::*;

    #[test]
    fn the_history_is_read_and_pruned_through_its_primary_key() {
        let conn = migrated();
        for sql in [
            include_str!("sql/throughput_since.sql"),
            include_str!("sql/throughput_prune.sql"),
        ] {
            let found = plan(&conn, sql, params![60]);
            assert!(found.contains("USING PRIMARY KEY (minute"), "{found}");
        }
    }
}
