//! Periodic tasks: the schedules table (migration 0006), declared,
//! listed, paused and ticked.

use std::time::SystemTime;

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::error::db_error;
use super::PostgresBackend;
use crate::error::{Error, Result};
use crate::micros;
use crate::options::NotBefore;
use crate::schedule::{Schedule, ScheduleInfo, StoredSchedule, UpsertPlan, Upserted};
use crate::task::NewTask;
use crate::unique::Enqueued;

/// The statements of schedules, with the schema filled in.
#[derive(Debug)]
pub(super) struct ScheduleSql {
    list: String,
    get: String,
    insert: String,
    update: String,
    remove: String,
    pause: String,
    tick: String,
    ticked: String,
}

impl ScheduleSql {
    pub(super) fn new(fill: impl Fn(&str) -> String) -> Self {
        ScheduleSql {
            list: fill(include_str!("sql/schedule_list.sql")),
            get: fill(include_str!("sql/schedule_get.sql")),
            insert: fill(include_str!("sql/schedule_insert.sql")),
            update: fill(include_str!("sql/schedule_update.sql")),
            remove: fill(include_str!("sql/schedule_remove.sql")),
            pause: fill(include_str!("sql/schedule_pause.sql")),
            tick: fill(include_str!("sql/schedule_tick.sql")),
            ticked: fill(include_str!("sql/schedule_ticked.sql")),
        }
    }
}

/// The time of a row of `schedule_list.sql` or `schedule_get.sql`, and
/// its schedule unless the row is the one of no schedule.
fn read(row: &Row) -> Result<(SystemTime, Option<StoredSchedule>)> {
    let now = micros::to_time(row.try_get(0).map_err(db_error)?);
    let Some(name) = row.try_get::<_, Option<String>>(1).map_err(db_error)? else {
        return Ok((now, None));
    };
    let get = |i| row.try_get(i).map_err(db_error);
    let stored = StoredSchedule {
        name,
        action: get(2)?,
        payload: row.try_get(3).map_err(db_error)?,
        options: get(4)?,
        cron: row.try_get(5).map_err(db_error)?,
        zone: row.try_get(6).map_err(db_error)?,
        every_us: row.try_get(7).map_err(db_error)?,
        missed: get(8)?,
        grace_us: row.try_get(9).map_err(db_error)?,
        paused: row.try_get(10).map_err(db_error)?,
        next_at: row.try_get(11).map_err(db_error)?,
        last_at: row.try_get(12).map_err(db_error)?,
        last_task: row.try_get(13).map_err(db_error)?,
    };
    Ok((now, Some(stored)))
}

impl PostgresBackend {
    pub(super) async fn schedules(&self) -> Result<(SystemTime, Vec<ScheduleInfo>)> {
        let rows = self.query(&self.sql.schedules.list, &[]).await?;
        let mut now = SystemTime::now();
        let mut schedules = Vec::with_capacity(rows.len());
        for row in &rows {
            let (at, stored) = read(row)?;
            now = at;
            if let Some(stored) = stored {
                schedules.push(stored.info()?);
            }
        }
        Ok((now, schedules))
    }

    /// Declares `schedule` (see `Backend::schedule_upsert`): the stored
    /// row is locked while it is compared; a concurrent first declaration
    /// makes this one look again.
    pub(super) async fn upsert_schedule(&self, schedule: &Schedule) -> Result<Upserted> {
        let sql = &self.sql.schedules;
        let mut client = self.client().await?;
        for _ in 0..3 {
            let tx = client.transaction().await.map_err(db_error)?;
            let row = tx
                .query_one(sql.get.as_str(), &[&schedule.name])
                .await
                .map_err(db_error)?;
            let (now, stored) = read(&row)?;
            let stored = stored.map(StoredSchedule::info).transpose()?;
            let plan = UpsertPlan::of(stored.as_ref().map(|s| &s.schedule), schedule, now)?;
            let row = StoredSchedule::of(schedule, plan.next_at.unwrap_or(now));
            let next_at = plan.next_at.map(micros::from_time);
            let now = micros::from_time(now);
            let params: [&(dyn ToSql + Sync); 11] = [
                &row.name,
                &row.action,
                &row.payload,
                &row.options,
                &row.cron,
                &row.zone,
                &row.every_us,
                &row.missed,
                &row.grace_us,
                &next_at,
                &now,
            ];
            let statement = match plan.upserted {
                Upserted::Unchanged => return Ok(Upserted::Unchanged),
                Upserted::Created => &sql.insert,
                Upserted::Changed => &sql.update,
            };
            if tx
                .execute(statement.as_str(), &params)
                .await
                .map_err(db_error)?
                == 1
            {
                tx.commit().await.map_err(db_error)?;
                return Ok(plan.upserted);
            }
        }
        Err(Error::other(format!(
            "the schedule {:?} kept changing while it was declared",
            schedule.name
        )))
    }

    pub(super) async fn remove_schedule(&self, name: &str) -> Result<bool> {
        Ok(self.execute(&self.sql.schedules.remove, &[&name]).await? == 1)
    }

    pub(super) async fn pause_schedule(&self, name: &str, paused: bool) -> Result<Option<bool>> {
        let rows = self
            .query(&self.sql.schedules.pause, &[&name, &paused])
            .await?;
        rows.first()
            .map(|row| row.try_get(0).map_err(db_error))
            .transpose()
    }

    /// Takes the ticks from `from` and inserts their `tasks` in one
    /// transaction (see `Backend::schedule_tick`). A repeat after a lost
    /// answer finds the ticks taken and adds nothing.
    pub(super) async fn tick_schedule(
        &self,
        name: &str,
        (from, to): (SystemTime, SystemTime),
        tasks: &[NewTask],
    ) -> Result<Option<Vec<Enqueued>>> {
        let sql = &self.sql.schedules;
        let (from, to) = (micros::from_time(from), micros::from_time(to));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let taken = tx
            .execute(sql.tick.as_str(), &[&name, &from, &to])
            .await
            .map_err(db_error)?;
        if taken != 1 {
            return Ok(None);
        }
        if tasks.is_empty() {
            // Every tick was skipped by the missed policy: only move on.
            tx.commit().await.map_err(db_error)?;
            return Ok(Some(Vec::new()));
        }
        self.wrote();
        let enqueued =
            super::transactional::insert_prepared(&tx, &self.run, &self.sql, &self.channel, tasks)
                .await?;
        if let Some((task, last)) = tasks.last().zip(enqueued.last()) {
            let at = match task.options.not_before {
                Some(NotBefore::At(at)) => micros::from_time(at),
                _ => to,
            };
            tx.execute(sql.ticked.as_str(), &[&name, &at, &last.id.0])
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(Some(enqueued))
    }
}
