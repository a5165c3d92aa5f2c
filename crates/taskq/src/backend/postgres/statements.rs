//! Every statement of the backend, with the schema filled in, and the
//! columns a batch insert binds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio_postgres::types::ToSql;

use super::config::quote;
use crate::micros;
use crate::options::NotBefore;
use crate::task::NewTask;

/// Every statement, with the schema filled in.
#[derive(Debug)]
pub(super) struct Sql {
    pub(super) insert: String,
    pub(super) insert_keyed: String,
    pub(super) insert_claimed: String,
    pub(super) insert_many: String,
    pub(super) insert_many_keyed: String,
    pub(super) notify: String,
    pub(super) notify_if_heard: String,
    pub(super) requeue_expired: String,
    pub(super) claim: String,
    pub(super) complete: String,
    pub(super) complete_retain: String,
    pub(super) fail: String,
    pub(super) extend: String,
    pub(super) release: String,
    pub(super) count_ready: String,
    pub(super) stats: String,
    pub(super) priorities: String,
    pub(super) get: String,
    /// A template: see [`PostgresBackend::task_list`].
    pub(super) list: String,
    pub(super) retry: String,
    pub(super) delete: String,
    pub(super) purge: String,
    pub(super) state: String,
    pub(super) unique_holders: String,
    pub(super) cancel_id: String,
    pub(super) cancel_key: String,
    pub(super) cancel_state: String,
    pub(super) pause: String,
    pub(super) resume: String,
    pub(super) paused: String,
    pub(super) applied: String,
    pub(super) completed: String,
    pub(super) follow_ups: String,
    pub(super) throughput_add: String,
    pub(super) throughput_since: String,
    pub(super) schedules: super::schedules::ScheduleSql,
    pub(super) limits: super::limits::LimitSql,
    pub(super) dependencies: super::dependencies::DependencySql,
}

impl Sql {
    pub(super) fn for_schema(schema: &str) -> Self {
        let quoted = quote(schema);
        let fill = |sql: &str| sql.replace("{schema}", &quoted);
        let cancel =
            |target: &str| fill(&include_str!("sql/task_cancel.sql").replace("{target}", target));
        let plain = |sql: &str| fill(&sql.replace("{on_conflict}", ""));
        let keyed = |sql: &str| fill(&sql.replace("{on_conflict}", "ON CONFLICT DO NOTHING"));
        Sql {
            insert: plain(include_str!("sql/task_insert.sql")),
            insert_keyed: keyed(include_str!("sql/task_insert.sql")),
            insert_claimed: fill(include_str!("sql/task_insert_claimed.sql")),
            insert_many: plain(include_str!("sql/task_insert_many.sql")),
            insert_many_keyed: keyed(include_str!("sql/task_insert_many.sql")),
            notify: fill(include_str!("sql/task_notify.sql")),
            notify_if_heard: fill(include_str!("sql/task_notify_if_heard.sql")),
            requeue_expired: fill(include_str!("sql/task_requeue_expired.sql")),
            claim: fill(include_str!("sql/task_claim.sql")),
            complete: fill(include_str!("sql/task_complete.sql")),
            complete_retain: fill(include_str!("sql/task_complete_retain.sql")),
            fail: fill(include_str!("sql/task_fail.sql")),
            extend: fill(include_str!("sql/task_extend.sql")),
            release: fill(include_str!("sql/task_release.sql")),
            count_ready: fill(include_str!("sql/task_count_ready.sql")),
            stats: fill(include_str!("sql/task_stats.sql")),
            priorities: fill(include_str!("sql/task_priorities.sql")),
            get: fill(include_str!("sql/task_get.sql")),
            list: fill(include_str!("sql/task_list.sql")),
            retry: fill(include_str!("sql/task_retry.sql")),
            delete: fill(include_str!("sql/task_delete.sql")),
            purge: fill(include_str!("sql/task_purge.sql")),
            state: fill(include_str!("sql/task_state.sql")),
            unique_holders: fill(include_str!("sql/task_unique_holders.sql")),
            cancel_id: cancel("id = $1::bigint"),
            cancel_key: cancel(CANCEL_KEY_TARGET),
            cancel_state: cancel("action = $1::text AND state = $3::text"),
            pause: fill(include_str!("sql/task_pause.sql")),
            resume: fill(include_str!("sql/task_resume.sql")),
            paused: fill(include_str!("sql/task_paused.sql")),
            applied: fill(include_str!("sql/task_applied.sql")),
            completed: fill(include_str!("sql/task_completed.sql")),
            follow_ups: fill(include_str!("sql/task_follow_ups.sql")),
            throughput_add: fill(include_str!("sql/throughput_add.sql")),
            throughput_since: fill(include_str!("sql/throughput_since.sql")),
            schedules: super::schedules::ScheduleSql::new(fill),
            limits: super::limits::LimitSql::new(fill),
            dependencies: super::dependencies::DependencySql::new(fill),
        }
    }
}

impl Sql {
    /// The statement that inserts `tasks`: one row or many, and with
    /// `ON CONFLICT DO NOTHING` only when one of them has a unique key.
    pub(super) fn insert_for(&self, tasks: &[NewTask], many: bool) -> &str {
        let keyed = tasks.iter().any(|task| task.options.unique.is_some());
        match (many, keyed) {
            (false, false) => &self.insert,
            (false, true) => &self.insert_keyed,
            (true, false) => &self.insert_many,
            (true, true) => &self.insert_many_keyed,
        }
    }
}

/// The `{target}` of `task_cancel.sql` for the task of action `$1` that
/// holds the unique key `$3` and may still run, found through the unique
/// index (see migration 0004).
const CANCEL_KEY_TARGET: &str = "id = (SELECT id FROM {schema}.taskq_tasks \
    WHERE action = $1::text AND unique_key = $3::text AND unique_key IS NOT NULL \
    AND (unique_states & CASE state WHEN 'waiting' THEN 1 WHEN 'queued' THEN 2 WHEN 'running' THEN 4 \
    WHEN 'succeeded' THEN 8 WHEN 'failed' THEN 16 ELSE 32 END::smallint) <> 0 \
    AND state IN ('waiting', 'queued', 'running') LIMIT 1)";

/// The columns of a batch insert, one array per column.
pub(super) struct InsertColumns<'a> {
    pub(super) actions: Vec<&'a str>,
    pub(super) payloads: Vec<&'a [u8]>,
    pub(super) run_at: Vec<Option<i64>>,
    pub(super) delays: Vec<Option<i64>>,
    pub(super) max_tries: Vec<i32>,
    pub(super) timeouts: Vec<i64>,
    pub(super) parents: Vec<Option<i64>>,
    pub(super) priorities: Vec<i16>,
    pub(super) keys: Vec<Option<&'a str>>,
    pub(super) key_states: Vec<i16>,
    pub(super) periods: Vec<Option<i64>>,
    pub(super) concurrency_keys: Vec<Option<&'a str>>,
}

impl<'a> InsertColumns<'a> {
    pub(super) fn new(tasks: &'a [NewTask]) -> Self {
        let mut columns = InsertColumns {
            actions: Vec::with_capacity(tasks.len()),
            payloads: Vec::with_capacity(tasks.len()),
            run_at: Vec::with_capacity(tasks.len()),
            delays: Vec::with_capacity(tasks.len()),
            max_tries: Vec::with_capacity(tasks.len()),
            timeouts: Vec::with_capacity(tasks.len()),
            parents: Vec::with_capacity(tasks.len()),
            priorities: Vec::with_capacity(tasks.len()),
            keys: Vec::with_capacity(tasks.len()),
            key_states: Vec::with_capacity(tasks.len()),
            periods: Vec::with_capacity(tasks.len()),
            concurrency_keys: Vec::with_capacity(tasks.len()),
        };
        for task in tasks {
            let options = &task.options;
            let (at, delay) = match options.not_before {
                None => (None, None),
                Some(NotBefore::Delay(delay)) => (None, Some(micros::from_duration(delay))),
                Some(NotBefore::At(at)) => (Some(micros::from_time(at)), None),
            };
            columns.actions.push(&task.action);
            columns.payloads.push(&task.payload);
            columns.run_at.push(at);
            columns.delays.push(delay);
            columns.max_tries.push(options.max_tries);
            columns
                .timeouts
                .push(micros::from_duration(options.timeout));
            columns.parents.push(options.parent.map(|p| p.0));
            columns.priorities.push(options.priority);
            let unique = options.unique.as_ref();
            columns.keys.push(unique.map(|u| u.key.as_str()));
            columns
                .key_states
                .push(unique.map_or(0, crate::Unique::states_bits));
            columns
                .periods
                .push(unique.and_then(crate::Unique::period_micros));
            columns
                .concurrency_keys
                .push(options.concurrency_key.as_deref());
        }
        columns
    }

    /// The arrays, as `task_insert_many` binds them.
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.actions,
            &self.payloads,
            &self.run_at,
            &self.delays,
            &self.max_tries,
            &self.timeouts,
            &self.parents,
            &self.priorities,
            &self.keys,
            &self.key_states,
            &self.periods,
            &self.concurrency_keys,
        ]
    }

    /// The values of task `i`, as `task_insert` binds them.
    pub(super) fn params_of(&self, i: usize) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.actions[i],
            &self.payloads[i],
            &self.run_at[i],
            &self.delays[i],
            &self.max_tries[i],
            &self.timeouts[i],
            &self.parents[i],
            &self.priorities[i],
            &self.keys[i],
            &self.key_states[i],
            &self.periods[i],
            &self.concurrency_keys[i],
        ]
    }
}

impl Sql {
    /// The statements of `schema`, built once per schema in the process
    /// (the transactional twins look them up on every call).
    pub(super) fn shared(schema: &str) -> Arc<Sql> {
        static BUILT: OnceLock<Mutex<HashMap<String, Arc<Sql>>>> = OnceLock::new();
        let mut built = BUILT
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let sql = built
            .entry(schema.to_owned())
            .or_insert_with(|| Arc::new(Sql::for_schema(schema)));
        Arc::clone(sql)
    }
}
