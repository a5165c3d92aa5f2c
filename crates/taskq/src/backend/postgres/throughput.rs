//! The throughput history: the tries workers ended, per minute and
//! action (migration 0005).

use std::time::SystemTime;

use super::error::db_error;
use super::PostgresBackend;
use crate::error::Result;
use crate::throughput::{minute_at, minute_of, Throughput};

impl PostgresBackend {
    /// Adds `rows` to the history and removes the minutes before
    /// `keep_from`, in one statement.
    pub(super) async fn throughput_add_rows(
        &self,
        rows: &[Throughput],
        keep_from: SystemTime,
    ) -> Result<()> {
        let minutes: Vec<i64> = rows.iter().map(|row| minute_of(row.minute)).collect();
        let actions: Vec<&str> = rows.iter().map(|row| row.action.as_str()).collect();
        let column = |get: fn(&Throughput) -> u64| -> Vec<i64> {
            rows.iter()
                .map(|row| i64::try_from(get(row)).unwrap_or(i64::MAX))
                .collect()
        };
        let completed = column(|row| row.completed);
        let retried = column(|row| row.retried);
        let failed = column(|row| row.failed);
        let keep_from = minute_of(keep_from);
        self.execute(
            &self.sql.throughput_add,
            &[
                &minutes, &actions, &completed, &retried, &failed, &keep_from,
            ],
        )
        .await?;
        Ok(())
    }

    /// The history from the minute of `since` on.
    pub(super) async fn throughput_rows_since(&self, since: SystemTime) -> Result<Vec<Throughput>> {
        let since = minute_of(since);
        self.read(|| async {
            let rows = self.query(&self.sql.throughput_since, &[&since]).await?;
            rows.iter()
                .map(|row| {
                    let count = |i| row.try_get::<_, i64>(i).map(i64::unsigned_abs);
                    Ok(Throughput {
                        minute: minute_at(row.try_get(0).map_err(db_error)?),
                        action: row.try_get(1).map_err(db_error)?,
                        completed: count(2).map_err(db_error)?,
                        retried: count(3).map_err(db_error)?,
                        failed: count(4).map_err(db_error)?,
                    })
                })
                .collect()
        })
        .await
    }
}
