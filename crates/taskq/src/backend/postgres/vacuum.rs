//! The vacuum of the tables that churn, between autovacuum's rounds.
//!
//! Every task leaves two dead rows in `taskq_tasks` (the version its claim
//! replaced, and itself once completed), and every claim and fold leaves
//! some in `taskq_tallies`. Autovacuum looks at a database once a minute
//! (`autovacuum_naptime`, a server setting no table can change), so at
//! 600 tasks a second some 70,000 dead rows pile up between its rounds,
//! and the table grows to hold them. So while this process writes, it
//! reads the tables' dead-row counts once a second and vacuums a table
//! itself (`VACUUM (SKIP_LOCKED)`, a few milliseconds on a table that is
//! kept small) once [`PostgresConfig::vacuum_after`] rows are dead (off
//! unless set). Processes need no coordination: a vacuum that finds
//! another (or autovacuum) at work on the table skips it, and one that
//! just ran shows in the counts the others read.
//!
//! While some transaction holds the xmin horizon back, a vacuum can
//! remove nothing newer than it; a vacuum that removed less than half of
//! what was dead doubles the wait before the next, up to a minute (one
//! autovacuum round), so that a pinned horizon costs one table scan a
//! minute, not one a second, and the first vacuum after the pin ends
//! comes within that minute.
//!
//! [`PostgresConfig::vacuum_after`]: super::PostgresConfig::vacuum_after

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use super::run::Runner;
use tokio::task::JoinHandle;

/// The tables that churn.
const TABLES: [&str; 2] = ["taskq_tasks", "taskq_tallies"];

/// How often the dead-row counts are read while this process writes.
const CHECK: Duration = Duration::from_secs(1);

/// The shortest wait between two vacuums of this process.
const MIN_GAP: Duration = Duration::from_secs(2);

/// The longest: one autovacuum round at the server's default.
const MAX_GAP: Duration = Duration::from_secs(60);

/// How long the counts are still read after this process last wrote: a
/// server process reports its changes to the statistics up to 10 s late
/// (at most once a second while busy, else when idle).
const SETTLE: Duration = Duration::from_secs(15);

/// The vacuum loop of one backend; stops when dropped.
#[derive(Debug)]
pub(super) struct Vacuumer {
    changed: Arc<AtomicBool>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Vacuumer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Vacuumer {
    /// Starts vacuuming the churning tables of `schema` (quoted as
    /// `quoted`) past `after` dead rows; `None` leaves them to autovacuum.
    pub(super) fn spawn(
        pool: Pool,
        runner: Arc<Runner>,
        schema: &str,
        quoted: &str,
        after: Option<u64>,
    ) -> Self {
        let changed = Arc::new(AtomicBool::new(false));
        let task = after.map(|after| {
            let state = Loop {
                pool,
                runner,
                schema: schema.to_owned(),
                quoted: quoted.to_owned(),
                after: i64::try_from(after).unwrap_or(i64::MAX),
                left: HashMap::new(),
                gap: MIN_GAP,
                next: Instant::now(),
            };
            tokio::spawn(state.run(Arc::clone(&changed)))
        });
        Vacuumer { changed, task }
    }

    /// Notes that this process wrote, so dead rows may have appeared
    /// (nothing when the loop is off, the default).
    pub(super) fn changed(&self) {
        if self.task.is_some() {
            self.changed.store(true, Ordering::Relaxed);
        }
    }
}

struct Loop {
    pool: Pool,
    runner: Arc<Runner>,
    schema: String,
    quoted: String,
    after: i64,
    /// Per table, the dead rows the last vacuum could not remove.
    left: HashMap<String, i64>,
    gap: Duration,
    next: Instant,
}

/// A table's dead rows, and whether it was vacuumed within [`MIN_GAP`].
struct Dead {
    table: String,
    dead: i64,
    recent: bool,
}

impl Loop {
    async fn run(mut self, changed: Arc<AtomicBool>) {
        let mut ticks = tokio::time::interval(CHECK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut wrote: Option<Instant> = None;
        let mut owner = false;
        loop {
            ticks.tick().await;
            if changed.swap(false, Ordering::Relaxed) {
                wrote = Some(Instant::now());
            }
            let settled = wrote.is_none_or(|at| at.elapsed() > SETTLE);
            if settled || Instant::now() < self.next {
                continue;
            }
            // Looked up once the tables exist (this process has written).
            if !owner {
                match self.may_vacuum().await {
                    Ok(true) => owner = true,
                    Ok(false) => {
                        tracing::info!(
                            schema = %self.schema,
                            "taskq leaves its tables to autovacuum: this role does not own them"
                        );
                        return;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "could not look up who owns the taskq tables");
                        self.next = Instant::now() + self.gap;
                        continue;
                    }
                }
            }
            if let Err(error) = self.round().await {
                tracing::debug!(%error, "could not vacuum the taskq tables");
                self.next = Instant::now() + self.gap;
            }
        }
    }

    /// Whether this role may vacuum the tables (owns them, or is a
    /// superuser); a vacuum by another role only warns and skips them.
    async fn may_vacuum(&self) -> Result<bool, String> {
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        let rows = self
            .runner
            .query(
                &client,
                "SELECT coalesce(bool_and(pg_has_role(c.relowner, 'USAGE')), false) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = ANY ($2)",
                &[&self.schema, &TABLES.to_vec()],
            )
            .await
            .map_err(|e| e.to_string())?;
        let row = rows.first().ok_or("no answer")?;
        row.try_get(0).map_err(|e| e.to_string())
    }

    /// The dead rows of each churning table, as the statistics say.
    async fn dead(&self) -> Result<Vec<Dead>, String> {
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        let rows = self
            .runner
            .query(
                &client,
                "SELECT relname::text, n_dead_tup, \
                        coalesce(greatest(last_vacuum, last_autovacuum) > now() - $3 * interval '1 millisecond', false) \
                 FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = ANY ($2)",
                &[&self.schema, &TABLES.to_vec(), &(MIN_GAP.as_millis() as f64)],
            )
            .await
            .map_err(|e| e.to_string())?;
        rows.iter()
            .map(|row| {
                Ok(Dead {
                    table: row.try_get(0).map_err(|e| e.to_string())?,
                    dead: row.try_get(1).map_err(|e| e.to_string())?,
                    recent: row.try_get(2).map_err(|e| e.to_string())?,
                })
            })
            .collect()
    }

    /// Vacuums the tables past the threshold (that nobody vacuumed just
    /// now), then sets the wait before the next round by what it removed.
    async fn round(&mut self) -> Result<(), String> {
        let before = self.dead().await?;
        let due: Vec<&Dead> = before
            .iter()
            .filter(|d| {
                let left = self.left.get(&d.table).copied().unwrap_or(0).min(d.dead);
                !d.recent && d.dead - left >= self.after
            })
            .collect();
        for d in &before {
            if let Some(left) = self.left.get_mut(&d.table) {
                *left = (*left).min(d.dead);
            }
        }
        if due.is_empty() {
            return Ok(());
        }
        let tables: Vec<String> = due
            .iter()
            .map(|d| format!("{}.{}", self.quoted, d.table))
            .collect();
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        let started = Instant::now();
        client
            .batch_execute(&format!("VACUUM (SKIP_LOCKED) {}", tables.join(", ")))
            .await
            .map_err(|e| e.to_string())?;
        drop(client);
        let after = self.dead().await?;
        let (was, now): (i64, i64) = due.iter().fold((0, 0), |(was, now), d| {
            let left = after
                .iter()
                .find(|a| a.table == d.table)
                .map_or(0, |a| a.dead);
            (was + d.dead, now + left)
        });
        for d in after
            .iter()
            .filter(|a| due.iter().any(|d| d.table == a.table))
        {
            self.left.insert(d.table.clone(), d.dead);
        }
        self.gap = if now * 2 > was {
            (self.gap * 2).min(MAX_GAP)
        } else {
            MIN_GAP
        };
        self.next = Instant::now() + self.gap;
        tracing::debug!(dead = was, left = now, took = ?started.elapsed(), next_in = ?self.gap, "vacuumed the taskq tables");
        Ok(())
    }
}
