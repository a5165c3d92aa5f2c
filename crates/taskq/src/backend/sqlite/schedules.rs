//! Periodic tasks on one SQLite connection: the schedules table
//! (migration 0006), declared, listed, paused and ticked.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::counts::CachedMark;
use super::error::db_error;
use super::statements;
use crate::error::Result;
use crate::micros;
use crate::schedule::{Schedule, ScheduleInfo, StoredSchedule, UpsertPlan, Upserted};
use crate::task::NewTask;
use crate::unique::Enqueued;

/// A row of `schedule_list.sql` or `schedule_get.sql`.
fn read(row: &Row<'_>) -> rusqlite::Result<StoredSchedule> {
    Ok(StoredSchedule {
        name: row.get(0)?,
        action: row.get(1)?,
        payload: row.get(2)?,
        options: row.get(3)?,
        cron: row.get(4)?,
        zone: row.get(5)?,
        every_us: row.get(6)?,
        missed: row.get(7)?,
        grace_us: row.get(8)?,
        paused: row.get(9)?,
        next_at: row.get(10)?,
        last_at: row.get(11)?,
        last_task: row.get(12)?,
    })
}

/// Every schedule, by name.
pub(crate) fn list(conn: &Connection) -> Result<Vec<ScheduleInfo>> {
    let stored = conn
        .prepare_cached(include_str!("sql/schedule_list.sql"))
        .and_then(|mut s| s.query_map([], read)?.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db_error)?;
    stored.into_iter().map(StoredSchedule::info).collect()
}

/// The schedule `name`, if there is one.
fn get(conn: &Connection, name: &str) -> Result<Option<ScheduleInfo>> {
    conn.prepare_cached(include_str!("sql/schedule_get.sql"))
        .and_then(|mut s| s.query_row([name], read).optional())
        .map_err(db_error)?
        .map(StoredSchedule::info)
        .transpose()
}

/// Declares `schedule` at `now`, in the writer's transaction (so nothing
/// changes the row between the look and the write).
pub(crate) fn upsert(conn: &Connection, now: i64, schedule: &Schedule) -> Result<Upserted> {
    let stored = get(conn, &schedule.name)?;
    let plan = UpsertPlan::of(
        stored.as_ref().map(|s| &s.schedule),
        schedule,
        micros::to_time(now),
    )?;
    let next_at = plan.next_at.map(micros::from_time);
    let row = StoredSchedule::of(schedule, plan.next_at.unwrap_or(micros::to_time(now)));
    let sql = match plan.upserted {
        Upserted::Unchanged => return Ok(Upserted::Unchanged),
        Upserted::Created => include_str!("sql/schedule_insert.sql"),
        Upserted::Changed => include_str!("sql/schedule_update.sql"),
    };
    conn.prepare_cached(sql)
        .and_then(|mut s| {
            s.execute(params![
                row.name,
                row.action,
                row.payload,
                row.options,
                row.cron,
                row.zone,
                row.every_us,
                row.missed,
                row.grace_us,
                next_at,
                now,
            ])
        })
        .map_err(db_error)?;
    Ok(plan.upserted)
}

/// Removes the schedule `name`; whether there was one.
pub(crate) fn remove(conn: &Connection, name: &str) -> Result<bool> {
    let removed = conn
        .prepare_cached(include_str!("sql/schedule_remove.sql"))
        .and_then(|mut s| s.execute([name]))
        .map_err(db_error)?;
    Ok(removed == 1)
}

/// Pauses or resumes the schedule `name` (see `Backend::schedule_set_paused`).
pub(crate) fn set_paused(
    conn: &Connection,
    now: i64,
    name: &str,
    paused: bool,
) -> Result<Option<bool>> {
    let changed = conn
        .prepare_cached(include_str!("sql/schedule_pause.sql"))
        .and_then(|mut s| s.execute(params![name, paused, now]))
        .map_err(db_error)?;
    if changed == 1 {
        return Ok(Some(true));
    }
    Ok(get(conn, name)?.map(|_| false))
}

/// Takes the ticks from `from` and inserts their `tasks` (see
/// `Backend::schedule_tick`), in the writer's transaction.
pub(crate) fn tick(
    conn: &Connection,
    now: i64,
    (name, from, to): (&str, i64, i64),
    tasks: &[NewTask],
    mark: CachedMark,
) -> Result<Option<Vec<Enqueued>>> {
    let taken = conn
        .prepare_cached(include_str!("sql/schedule_tick.sql"))
        .and_then(|mut s| s.execute(params![name, from, to]))
        .map_err(db_error)?;
    if taken != 1 {
        return Ok(None);
    }
    let enqueued = statements::insert(conn, now, tasks, mark)?;
    let last = tasks.last().zip(enqueued.last());
    if let Some((task, enqueued)) = last {
        let at = match task.options.not_before {
            Some(crate::options::NotBefore::At(at)) => micros::from_time(at),
            _ => now,
        };
        conn.prepare_cached(include_str!("sql/schedule_ticked.sql"))
            .and_then(|mut s| s.execute(params![name, at, enqueued.id.0]))
            .map_err(db_error)?;
    }
    Ok(Some(enqueued))
}
