//! Tasks as stored, and tasks about to be enqueued.

use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::attempt::{Attempt, WorkerId};
use crate::error::{Error, Result};
use crate::names::{validate_action, TaskId};
use crate::options::{EnqueueOptions, NotBefore, FOREVER};
use crate::state::State;
use crate::unique::Unique;

/// The largest payload, in bytes (16 MiB). Larger data belongs in the
/// application's own tables, with its key in the payload.
pub const MAX_PAYLOAD_LEN: usize = 16 * 1024 * 1024;

/// The identity of one claim: the task and the fencing token the claim
/// received. Every call made with it is refused with
/// [`Error::LeaseLost`](crate::Error::LeaseLost) once a later claim took the task over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseRef {
    /// The leased task.
    pub id: TaskId,
    /// The fencing token of the claim; it grows with every claim.
    pub token: i64,
}

/// What completing a claimed task on the caller's own connection needs
/// (the transactional `complete_in` of each backend): the lease, and
/// whether the queue keeps completed tasks. `&Lease` converts into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CompletionRef {
    /// The claim to complete.
    pub lease: LeaseRef,
    /// Keep the task as succeeded instead of deleting it.
    pub retain: bool,
}

/// A task as it is stored: one row of the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// The action (queue name) it belongs to.
    pub action: String,
    /// The payload bytes; JSON when enqueued from a typed value.
    pub payload: Vec<u8>,
    /// Where it is in its life.
    pub state: State,
    /// It may not be claimed before this time.
    pub not_before: SystemTime,
    /// How many tries have started (a release does not count).
    pub tries: i32,
    /// How many tries it gets before failing for good; [`FOREVER`] is -1.
    pub max_tries: i32,
    /// The length of the lease a claim takes.
    pub timeout: Duration,
    /// When the current lease ends; set only while running.
    pub expires: Option<SystemTime>,
    /// The task whose completion enqueued this one.
    pub parent: Option<TaskId>,
    /// The error of the last failed try, or why its last lease ended.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: SystemTime,
    /// When it failed for good or succeeded; `None` while it may still run.
    pub finished_at: Option<SystemTime>,
    /// The fencing token of the newest claim (0 if never claimed).
    pub lease_token: i64,
    /// Lower runs first; default 0.
    pub priority: i16,
    /// Its unique key, if it has one (see [`Unique`](crate::Unique)).
    pub unique_key: Option<String>,
    /// The states its unique key counts among; empty without a key.
    pub unique_states: Vec<State>,
    /// The start of the period window its unique key holds in, for a key
    /// with a period.
    pub unique_window: Option<SystemTime>,
    /// When a cancellation was asked for while it ran (see
    /// [`Queue::cancel`](crate::Queue::cancel)).
    pub cancel_requested: Option<SystemTime>,
    /// When its newest try was claimed.
    pub started_at: Option<SystemTime>,
    /// Who claimed its newest try: while it runs, who holds it.
    pub worker: Option<WorkerId>,
    /// Its finished tries, oldest first: the newest
    /// [`KEPT_ATTEMPTS`](crate::KEPT_ATTEMPTS).
    pub attempts: Vec<Attempt>,
    /// The key its action's per-key concurrency limit counts it under.
    pub concurrency_key: Option<String>,
    /// What its handler returned when it succeeded, as JSON (see
    /// [`TaskResult`](crate::TaskResult)); read it with
    /// [`result_json`](Task::result_json). Only succeeded tasks have one.
    pub result: Option<Vec<u8>>,
    /// How many of its dependencies have not finished yet, while it is
    /// [waiting](crate::State::Waiting); read by `Queue::get` and
    /// `Queue::list` (0 in a claimed task). `Queue::links` names them.
    pub waiting_on: i32,
}

impl Task {
    /// Decodes the JSON payload into `T`.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.payload).map_err(|source| Error::PayloadDecode {
            id: self.id,
            source,
        })
    }

    /// Whether a failure of the current try would be the last one.
    pub fn is_last_try(&self) -> bool {
        self.max_tries != FOREVER && self.tries >= self.max_tries
    }

    /// Whether completing it must keep it as succeeded for its unique key
    /// to see (a key with a period, or one that counts succeeded tasks).
    pub(crate) fn key_keeps_completed(&self) -> bool {
        self.unique_key.is_some()
            && (self.unique_window.is_some() || self.unique_states.contains(&State::Succeeded))
    }
}

/// How many tasks of one action are in each state.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ActionStats {
    /// The action.
    pub action: String,
    /// Waiting for their dependencies.
    pub waiting: u64,
    /// Waiting to run, including those whose not-before time is still ahead.
    pub queued: u64,
    /// Leased to a worker (including leases that expired and were not yet
    /// taken over).
    pub running: u64,
    /// Failed for good.
    pub failed: u64,
    /// Completed and retained.
    pub succeeded: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Whether the action is paused: nothing of it is claimed until it is
    /// resumed.
    pub paused: bool,
    /// The priorities its queued tasks have, lowest (first to run) first;
    /// empty when none is queued. Read one index seek per priority, so
    /// as cheap at a million queued tasks as at ten.
    pub priorities: Vec<i16>,
    /// Since when the longest-waiting ready task has been ready to run:
    /// the earliest not-before time, among the queued tasks, that has
    /// come. `None` when no queued task is due yet. The age of the
    /// backlog is the time since then. In JSON, Unix seconds.
    #[serde(serialize_with = "crate::throughput::unix_seconds::serialize_option")]
    pub oldest_ready: Option<SystemTime>,
}

impl ActionStats {
    /// An all-zero row for `action`.
    pub fn new(action: impl Into<String>) -> Self {
        ActionStats {
            action: action.into(),
            ..Default::default()
        }
    }

    /// Adds `count` tasks in `state`.
    pub fn add(&mut self, state: State, count: u64) {
        match state {
            State::Waiting => self.waiting += count,
            State::Queued => self.queued += count,
            State::Running => self.running += count,
            State::Failed => self.failed += count,
            State::Succeeded => self.succeeded += count,
            State::Cancelled => self.cancelled += count,
        }
    }

    /// The count for one state.
    pub fn get(&self, state: State) -> u64 {
        match state {
            State::Waiting => self.waiting,
            State::Queued => self.queued,
            State::Running => self.running,
            State::Failed => self.failed,
            State::Succeeded => self.succeeded,
            State::Cancelled => self.cancelled,
        }
    }

    /// All tasks of the action.
    pub fn total(&self) -> u64 {
        self.waiting + self.queued + self.running + self.failed + self.succeeded + self.cancelled
    }

    /// One row per action from `(action, state, count)` rows sorted by
    /// action, as the backends' stats statements return them.
    pub(crate) fn fold(rows: impl IntoIterator<Item = (String, State, u64)>) -> Vec<ActionStats> {
        let mut stats: Vec<ActionStats> = Vec::new();
        for (action, state, count) in rows {
            match stats.last_mut() {
                Some(last) if last.action == action => last.add(state, count),
                _ => {
                    let mut row = ActionStats::new(action);
                    row.add(state, count);
                    stats.push(row);
                }
            }
        }
        stats
    }

    /// Marks the paused actions of `paused` (sorted) in `stats` (sorted by
    /// action), adding an empty row for a paused action without tasks.
    pub(crate) fn mark_paused(stats: &mut Vec<ActionStats>, paused: &[String]) {
        for action in paused {
            match stats.binary_search_by(|row| row.action.as_str().cmp(action)) {
                Ok(at) => stats[at].paused = true,
                Err(at) => {
                    let mut row = ActionStats::new(action.clone());
                    row.paused = true;
                    stats.insert(at, row);
                }
            }
        }
    }
}

/// A task to enqueue: an action, a payload and options.
///
/// ```
/// use std::time::Duration;
/// use taskq::NewTask;
///
/// let task = NewTask::json("send-email", &serde_json::json!({"to": "a@example.com"}))?
///     .max_tries(3)
///     .delay(Duration::from_secs(60));
/// # Ok::<(), taskq::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTask {
    /// The action (queue name).
    pub action: String,
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// How the task runs.
    pub options: EnqueueOptions,
}

impl NewTask {
    /// A task whose payload is `payload` encoded as JSON.
    pub fn json<T: Serialize + ?Sized>(action: impl Into<String>, payload: &T) -> Result<Self> {
        let payload =
            serde_json::to_vec(payload).map_err(|source| Error::PayloadEncode { source })?;
        Ok(Self::raw(action, payload))
    }

    /// A task whose payload is JSON text the caller already has (read from
    /// a file or a request, say). The bytes are checked to be one valid
    /// JSON value in UTF-8, strings included, so a JSON handler can
    /// always read them; otherwise [`Error::InvalidInput`] says where
    /// they are not.
    ///
    /// ```
    /// use taskq::NewTask;
    ///
    /// let task = NewTask::json_bytes("email", br#"{"to": "ada@example.com"}"#.to_vec())?;
    /// assert!(NewTask::json_bytes("email", b"\"\xff\xfe\"".to_vec()).is_err());
    /// # Ok::<(), taskq::Error>(())
    /// ```
    pub fn json_bytes(action: impl Into<String>, payload: impl Into<Vec<u8>>) -> Result<Self> {
        let payload = payload.into();
        check_json(&payload)?;
        Ok(Self::raw(action, payload))
    }

    /// A task whose payload is the given bytes, in an encoding of the
    /// caller's choice.
    pub fn raw(action: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        NewTask {
            action: action.into(),
            payload: payload.into(),
            options: EnqueueOptions::default(),
        }
    }

    /// Replaces all options.
    pub fn options(mut self, options: EnqueueOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets how many tries the task gets ([`FOREVER`] for no limit).
    pub fn max_tries(mut self, max_tries: i32) -> Self {
        self.options.max_tries = max_tries;
        self
    }

    /// Sets the lease length of each try.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// Makes the task wait this long (by the database's clock) before it
    /// may run.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.options.not_before = Some(NotBefore::Delay(delay));
        self
    }

    /// Makes the task wait until this time before it may run.
    pub fn run_at(mut self, at: SystemTime) -> Self {
        self.options.not_before = Some(NotBefore::At(at));
        self
    }

    /// Records the task that spawned this one.
    pub fn parent(mut self, parent: TaskId) -> Self {
        self.options.parent = Some(parent);
        self
    }

    /// Sets the priority: lower runs first, default 0. Claims take the
    /// ready tasks of an action by priority, then not-before time, then id.
    pub fn priority(mut self, priority: i16) -> Self {
        self.options.priority = priority;
        self
    }

    /// Gives the task a unique key among the waiting, queued and running tasks of
    /// its action: enqueueing it while another holds the key returns that
    /// one, [marked as a duplicate](crate::Enqueued::duplicate).
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.options.unique = Some(Unique::key(key));
        self
    }

    /// Gives the task a unique key with the states and period of `unique`.
    pub fn unique(mut self, unique: Unique) -> Self {
        self.options.unique = Some(unique);
        self
    }

    /// Counts the task under `key` for its action's per-key concurrency
    /// limit (see [`Limits::per_key`](crate::Limits::per_key)): with a
    /// limit of 1 and a customer's id as the key, one task per customer
    /// runs at a time, while the tasks of other customers run beside it.
    pub fn concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.options.concurrency_key = Some(key.into());
        self
    }

    /// Makes the task wait for the existing tasks `ids`: it is enqueued
    /// [waiting](crate::State::Waiting), and queued once all of them have
    /// succeeded (one that no longer exists counts as succeeded). For new
    /// tasks that depend on each other, see [`Workflow`](crate::Workflow).
    pub fn depends_on(mut self, ids: impl IntoIterator<Item = TaskId>) -> Self {
        self.options
            .depends_on
            .extend(ids.into_iter().map(crate::Dependency::Task));
        self
    }

    /// Runs the task once its dependencies have finished, even if some
    /// failed or were cancelled (its handler can see which through
    /// [`TaskContext::dependencies`](crate::worker::TaskContext::dependencies)),
    /// instead of cancelling it with them.
    pub fn run_if_dependencies_fail(mut self) -> Self {
        self.options.run_if_dependencies_fail = true;
        self
    }

    /// Checks the action, payload and options; every enqueue path calls it.
    pub fn validate(&self) -> Result<()> {
        validate_action(&self.action)?;
        if self.payload.len() > MAX_PAYLOAD_LEN {
            return Err(Error::invalid(
                "payload",
                format!(
                    "{} bytes is more than the limit of {MAX_PAYLOAD_LEN} bytes",
                    self.payload.len()
                ),
            ));
        }
        self.options.validate()
    }
}

/// The distinct actions of `tasks` that are due to run now.
pub(crate) fn due_actions(tasks: &[NewTask]) -> Vec<String> {
    let now = SystemTime::now();
    let mut due: Vec<String> = Vec::new();
    for task in tasks {
        let ready = match task.options.not_before {
            None => true,
            Some(NotBefore::Delay(delay)) => delay.is_zero(),
            Some(NotBefore::At(at)) => at <= now,
        };
        if ready && !due.contains(&task.action) {
            due.push(task.action.clone());
        }
    }
    due
}

/// Follow-up tasks of the completion of `parent`: each validated, with
/// its parent set.
pub(crate) fn follow_ups_of(parent: TaskId, follow_ups: Vec<NewTask>) -> Result<Vec<NewTask>> {
    follow_ups
        .into_iter()
        .map(|mut task| {
            task.options.parent = Some(parent);
            task.validate().map(|()| task)
        })
        .collect()
}

/// Checks that `bytes` are one JSON value in valid UTF-8, its strings
/// included (escapes such as a lone `\ud800` that no JSON reader can
/// decode are refused too).
pub(crate) fn check_json(bytes: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::invalid(
            "payload",
            format!(
                "is not valid JSON: it is not UTF-8 text (byte {} is not)",
                e.valid_up_to()
            ),
        )
    })?;
    serde_json::from_str::<serde_json::Value>(text)
        .map(drop)
        .map_err(|e| Error::invalid("payload", format!("is not valid JSON: {e}")))
}

/// Text as taskq stores it: the same on every backend. PostgreSQL's text
/// cannot hold a NUL character, so each becomes U+FFFD (the replacement
/// character) everywhere.
pub(crate) fn storable_text(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_payloads_must_be_valid_json_strings_included() {
        assert!(NewTask::json_bytes("a", b"{\"a\": [1, \"\xc3\xa9\"]}".to_vec()).is_ok());
        for bad in [
            &b"\"\xff\xfe\""[..],
            b"{\"a\": 1",
            b"\"\\ud800\"",
            b"1 2",
            b"",
        ] {
            let error = NewTask::json_bytes("a", bad.to_vec()).unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::InvalidInput {
                        field: "payload",
                        ..
                    }
                ),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn text_with_nul_is_stored_with_a_replacement_character() {
        assert_eq!(storable_text("a\0b".into()), "a\u{FFFD}b");
        assert_eq!(storable_text("plain".into()), "plain");
    }

    #[test]
    fn huge_payloads_are_refused() {
        let task = NewTask::raw("a", vec![0u8; MAX_PAYLOAD_LEN + 1]);
        assert!(matches!(
            task.validate(),
            Err(Error::InvalidInput {
                field: "payload",
                ..
            })
        ));
    }

    #[test]
    fn typed_payload_round_trips_and_bad_payload_is_typed_error() {
        let task = NewTask::json("a", &vec![1, 2, 3]).unwrap();
        assert_eq!(task.payload, b"[1,2,3]");
        let stored = Task {
            id: TaskId(7),
            action: "a".into(),
            payload: b"not json".to_vec(),
            state: State::Queued,
            not_before: SystemTime::UNIX_EPOCH,
            tries: 0,
            max_tries: 10,
            timeout: Duration::from_secs(1),
            expires: None,
            parent: None,
            last_error: None,
            created_at: SystemTime::UNIX_EPOCH,
            finished_at: None,
            lease_token: 0,
            priority: 0,
            unique_key: None,
            unique_states: Vec::new(),
            unique_window: None,
            cancel_requested: None,
            started_at: None,
            worker: None,
            attempts: Vec::new(),
            concurrency_key: None,
            result: None,
            waiting_on: 0,
        };
        let err = stored.payload_json::<Vec<i32>>().unwrap_err();
        assert!(matches!(err, Error::PayloadDecode { id: TaskId(7), .. }));
    }
}
