//! Driver errors as taskq's, with a portable kind.

use super::migrate::SCHEMA_VERSION;
use crate::error::{DatabaseError, DatabaseErrorKind, Error};

/// Turns a driver error into taskq's, with a portable kind.
pub(crate) fn db_error(error: rusqlite::Error) -> Error {
    let kind = match &error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            if message.as_deref().is_some_and(schema_missing) {
                return Error::SchemaTooOld {
                    found: 0,
                    needed: SCHEMA_VERSION,
                };
            }
            kind_of(failure)
        }
        _ => DatabaseErrorKind::Other,
    };
    let message = match kind {
        DatabaseErrorKind::NotADatabase => {
            "the file is not a SQLite database (or is encrypted)".to_string()
        }
        _ => error.to_string(),
    };
    Error::Database(DatabaseError::new(
        kind,
        message,
        Some(std::sync::Arc::new(error)),
    ))
}

/// Whether SQLite's error `message` says taskq's tables are not there.
pub(super) fn schema_missing(message: &str) -> bool {
    message.starts_with("no such table: taskq_")
}

/// The portable kind of SQLite's error `failure`.
pub(super) fn kind_of(failure: &rusqlite::ffi::Error) -> DatabaseErrorKind {
    use rusqlite::ErrorCode;
    match failure.code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => DatabaseErrorKind::Busy,
        ErrorCode::ConstraintViolation
            if matches!(
                failure.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            DatabaseErrorKind::UniqueViolation
        }
        ErrorCode::NotADatabase => DatabaseErrorKind::NotADatabase,
        ErrorCode::DatabaseCorrupt => DatabaseErrorKind::Corrupt,
        ErrorCode::DiskFull => DatabaseErrorKind::Full,
        ErrorCode::ReadOnly => DatabaseErrorKind::ReadOnly,
        ErrorCode::PermissionDenied => DatabaseErrorKind::PermissionDenied,
        ErrorCode::CannotOpen => DatabaseErrorKind::CannotOpen,
        _ => DatabaseErrorKind::Other,
    }
}
