//! The states a task moves through. `docs/lifecycle.md` draws the diagram.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Where a task is in its life.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for its dependencies (see
    /// [`NewTask::depends_on`](crate::NewTask::depends_on)): not ready to
    /// claim. The completion of its last dependency queues it; a
    /// dependency that fails or is cancelled cancels it, unless it runs
    /// anyway ([`NewTask::run_if_dependencies_fail`](crate::NewTask::run_if_dependencies_fail)).
    Waiting,
    /// Waiting to run. Enqueue, a failure with tries left, a release, an
    /// expired lease or a manual retry put it here; a claim takes it out
    /// once its not-before time has come.
    Queued,
    /// Leased to a worker until the lease expires. A claim puts it here;
    /// complete, fail, release or lease expiry take it out.
    Running,
    /// Failed for good: its tries are used up or it was failed
    /// permanently. It stays, with its last error, until it is retried,
    /// deleted or purged.
    Failed,
    /// Completed, kept only when the queue is configured to retain
    /// completed tasks, or its unique key must be remembered (otherwise
    /// completion deletes the row). Purge removes it.
    Succeeded,
    /// Cancelled: before it ran, or while it ran and its handler did not
    /// complete it. Kept, with the reason in its last error, until it is
    /// retried, deleted or purged. It never runs again unless retried.
    Cancelled,
}

impl State {
    /// Every state, in lifecycle order.
    pub const ALL: [State; 6] = [
        State::Waiting,
        State::Queued,
        State::Running,
        State::Failed,
        State::Succeeded,
        State::Cancelled,
    ];

    /// The states a task has finished in.
    pub const FINISHED: [State; 3] = [State::Failed, State::Succeeded, State::Cancelled];

    /// The lower-case name stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Queued => "queued",
            State::Running => "running",
            State::Failed => "failed",
            State::Succeeded => "succeeded",
            State::Cancelled => "cancelled",
        }
    }

    /// Whether the task has finished (failed, succeeded or cancelled) and
    /// will not run again unless retried.
    pub fn is_finished(self) -> bool {
        matches!(self, State::Failed | State::Succeeded | State::Cancelled)
    }

    /// The state's bit in a unique key's set of states (see
    /// [`Unique`](crate::Unique)), as the database stores it; 1 is kept
    pub(crate) fn bit(self) -> i16 {
        match self {
            State::Waiting => 1,
            State::Queued => 2,
            State::Running => 4,
            State::Succeeded => 8,
            State::Failed => 16,
            State::Cancelled => 32,
        }
    }
}

/// What a cancellation did to one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// It had not started: it is [`State::Cancelled`] now.
    Cancelled,
    /// It is running: its cancellation was asked for. Its handler hears
    /// it; the task ends cancelled unless the handler completes it.
    Requested,
    /// It had already finished, in this state; nothing changed.
    AlreadyFinished(State),
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "state",
                    format!("{s:?} is not one of waiting, queued, running, failed, succeeded, cancelled"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>().unwrap(), state);
        }
        assert!("done".parse::<State>().is_err());
    }
}
