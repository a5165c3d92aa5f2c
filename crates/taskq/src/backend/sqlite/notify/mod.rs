//! Wake-ups across processes: a thread that watches the file's data
//! version and, when another connection committed, wakes the waiters of
//! actions with tasks ready and tells the handlers of this process whose
//! task's cancellation was asked for.

use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use super::pool::ReadPool;
use super::statements;
use crate::backend::Waiters;
use crate::clock::Clock;
use crate::micros;

/// How often a waiting queue looks whether another connection (another
/// process, say) committed: `PRAGMA data_version`, a read of the shared
/// WAL index that touches no table.
const WATCH_EVERY: Duration = Duration::from_millis(20);

/// Wakes the waiters of actions that have tasks ready after another
/// connection committed, until the queue that owns `wakeups` is gone.
pub(super) fn watch(readers: Arc<ReadPool>, clock: Clock, waiters: Weak<dyn Waiters>) {
    let conn = match readers.take() {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%error, "cannot watch the SQLite file for other processes' tasks; waiters poll");
            return;
        }
    };
    let mut seen: Option<i64> = None;
    loop {
        thread::sleep(WATCH_EVERY);
        let Some(waiters) = waiters.upgrade() else {
            return;
        };
        let version = conn.query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0));
        match version {
            Ok(version) if seen == Some(version) => continue,
            Ok(version) => seen = Some(version),
            Err(error) => {
                tracing::debug!(%error, "could not read the SQLite data version");
                continue;
            }
        }
        for action in waiters.waited() {
            // An error cannot tell: let the waiters look for themselves.
            let ready = statements::count_ready(&conn, micros::from_time(clock.now()), &action);
            if ready.is_err() || ready.is_ok_and(|n| n > 0) {
                waiters.wake(&action);
            }
        }
        // An error cannot tell either: the heartbeat asks again.
        for id in waiters.running() {
            if statements::cancel_asked(&conn, id).unwrap_or(false) {
                waiters.cancel_requested(id);
            }
        }
    }
}
