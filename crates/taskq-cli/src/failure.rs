//! What the command tells the user when it fails, and its exit code.

use taskq::{DatabaseErrorKind, Error};

/// The database failed or refused the operation.
pub const OTHER: u8 = 1;
/// Bad usage or invalid input.
pub const INVALID: u8 = 2;
/// No task with that id.
pub const NOT_FOUND: u8 = 3;
/// The task's state does not allow the operation.
pub const WRONG_STATE: u8 = 4;
/// The database cannot be reached or used.
pub const UNAVAILABLE: u8 = 5;

/// Interrupted by SIGINT (Ctrl-C), as shells count it: 128 + 2.
pub const INTERRUPTED: u8 = 130;

/// A failed command: a sentence for the user and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Standard output was closed by its reader (`taskq list | head`):
    /// the command ends quietly, with success, as other Unix tools do.
    pub fn closed_pipe() -> Self {
        Failure {
            code: 0,
            message: String::new(),
        }
    }

    /// Whether this ends the command without a word.
    pub fn is_quiet(&self) -> bool {
        self.code == 0
    }

    /// The error as a JSON object, for `--json`.
    pub fn json(&self) -> serde_json::Value {
        let kind = match self.code {
            INVALID => "invalid_input",
            NOT_FOUND => "not_found",
            WRONG_STATE => "wrong_state",
            UNAVAILABLE => "unavailable",
            INTERRUPTED => "interrupted",
            _ => "database",
        };
        serde_json::json!({"error": {"code": self.code, "kind": kind, "message": self.message}})
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Failure {
            code: INVALID,
            message: message.into(),
        }
    }

    pub fn other(message: impl Into<String>) -> Self {
        Failure {
            code: OTHER,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = match &error {
            Error::TaskNotFound { .. } | Error::ScheduleNotFound { .. } => NOT_FOUND,
            Error::WrongState { .. } | Error::LeaseLost { .. } | Error::Duplicate { .. } => {
                WRONG_STATE
            }
            Error::InvalidInput { .. }
            | Error::PayloadEncode { .. }
            | Error::PayloadDecode { .. }
            | Error::ResultDecode { .. } => INVALID,
            Error::SchemaTooNew { .. }
            | Error::SchemaTooOld { .. }
            | Error::MigrationMismatch { .. } => UNAVAILABLE,
            Error::Database(e) => match e.kind {
                DatabaseErrorKind::ConnectionLost
                | DatabaseErrorKind::NotADatabase
                | DatabaseErrorKind::Corrupt
                | DatabaseErrorKind::ReadOnly
                | DatabaseErrorKind::PermissionDenied
                | DatabaseErrorKind::CannotOpen => UNAVAILABLE,
                _ => OTHER,
            },
            _ => OTHER,
        };
        Failure {
            code,
            message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskq::DatabaseError;

    #[test]
    fn databases_that_cannot_be_used_exit_5() {
        for kind in [
            DatabaseErrorKind::ConnectionLost,
            DatabaseErrorKind::CannotOpen,
            DatabaseErrorKind::ReadOnly,
            DatabaseErrorKind::PermissionDenied,
            DatabaseErrorKind::NotADatabase,
            DatabaseErrorKind::Corrupt,
        ] {
            let error = Error::Database(DatabaseError::new(kind, "no", None));
            assert_eq!(Failure::from(error).code, UNAVAILABLE, "{kind}");
        }
        let busy = Error::Database(DatabaseError::new(DatabaseErrorKind::Busy, "locked", None));
        assert_eq!(Failure::from(busy).code, OTHER);
    }

    #[test]
    fn errors_as_json_name_their_kind() {
        let failure = Failure::invalid("bad");
        assert_eq!(failure.json()["error"]["kind"], "invalid_input");
        assert!(Failure::closed_pipe().is_quiet());
    }
}
