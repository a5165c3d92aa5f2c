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

/// A failed command: a sentence for the user and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
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
            Error::TaskNotFound { .. } => NOT_FOUND,
            Error::WrongState { .. } | Error::LeaseLost { .. } => WRONG_STATE,
            Error::InvalidInput { .. }
            | Error::PayloadEncode { .. }
            | Error::PayloadDecode { .. } => INVALID,
            Error::SchemaTooNew { .. }
            | Error::SchemaTooOld { .. }
            | Error::MigrationMismatch { .. } => UNAVAILABLE,
            Error::Database(e) => match e.kind {
                DatabaseErrorKind::ConnectionLost
                | DatabaseErrorKind::NotADatabase
                | DatabaseErrorKind::Corrupt => UNAVAILABLE,
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
