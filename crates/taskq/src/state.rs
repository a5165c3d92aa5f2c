//! The states a task moves through. `docs/lifecycle.md` draws the diagram.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
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
    /// completed tasks (otherwise completion deletes the row). Purge
    /// removes it.
    Succeeded,
}

impl State {
    /// Every state, in lifecycle order.
    pub const ALL: [State; 4] = [
        State::Queued,
        State::Running,
        State::Failed,
        State::Succeeded,
    ];

    /// The lower-case name stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Failed => "failed",
            State::Succeeded => "succeeded",
        }
    }

    /// Whether the task has finished (failed or succeeded) and will not run
    /// again unless retried.
    pub fn is_finished(self) -> bool {
        matches!(self, State::Failed | State::Succeeded)
    }
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
                    format!("{s:?} is not one of queued, running, failed, succeeded"),
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
