//! Driver errors as taskq's, with a portable kind.

use std::sync::Arc;

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use super::SCHEMA_VERSION;
use crate::error::{DatabaseError, DatabaseErrorKind, Error};
use crate::task::LeaseRef;

/// Turns a driver error into taskq's, with a portable kind.
pub(crate) fn db_error(error: tokio_postgres::Error) -> Error {
    let (kind, message) = match error.as_db_error() {
        Some(db) => {
            let code = db.code();
            if schema_missing(code, db.message()) {
                return Error::SchemaTooOld {
                    found: 0,
                    needed: SCHEMA_VERSION,
                };
            }
            let kind = kind_of(code);
            (kind, format!("{}: {}", db.severity(), db.message()))
        }
        None => {
            let mut message = error.to_string();
            let mut connection = error.is_closed() || message.starts_with("error connecting");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !message.contains(&text) {
                    message = format!("{message}: {text}");
                }
                connection |= cause.is::<std::io::Error>();
                source = cause.source();
            }
            let kind = if connection {
                DatabaseErrorKind::ConnectionLost
            } else {
                DatabaseErrorKind::Other
            };
            (kind, message)
        }
    };
    Error::Database(DatabaseError::new(kind, message, Some(Arc::new(error))))
}

/// Whether the server rolled the statement back to break a deadlock
/// (40P01) or a serialization conflict (40001): nothing of it applied,
/// and it may run again as it was.
pub(super) fn conflicted(error: &Error) -> bool {
    let Error::Database(db) = error else {
        return false;
    };
    std::error::Error::source(db)
        .and_then(|source| source.downcast_ref::<tokio_postgres::Error>())
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|code| {
            *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
        })
}

/// Whether the server's error `code` and `message` say taskq's schema or
/// tables are not there.
pub(super) fn schema_missing(code: &SqlState, message: &str) -> bool {
    (*code == SqlState::UNDEFINED_TABLE && message.contains("taskq_"))
        || *code == SqlState::INVALID_SCHEMA_NAME
}

/// The portable kind of the server's error `code`.
pub(super) fn kind_of(code: &SqlState) -> DatabaseErrorKind {
    if *code == SqlState::UNIQUE_VIOLATION {
        DatabaseErrorKind::UniqueViolation
    } else if [
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::TOO_MANY_CONNECTIONS,
    ]
    .contains(code)
    {
        DatabaseErrorKind::Busy
    } else if *code == SqlState::DISK_FULL {
        DatabaseErrorKind::Full
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        DatabaseErrorKind::ReadOnly
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        DatabaseErrorKind::PermissionDenied
    } else if [
        SqlState::INVALID_PASSWORD,
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
        SqlState::INVALID_CATALOG_NAME,
    ]
    .contains(code)
    {
        DatabaseErrorKind::CannotOpen
    } else if [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::CONNECTION_FAILURE,
        SqlState::CONNECTION_EXCEPTION,
    ]
    .contains(code)
    {
        DatabaseErrorKind::ConnectionLost
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        DatabaseErrorKind::Corrupt
    } else {
        DatabaseErrorKind::Other
    }
}

pub(super) fn pool_error(error: PoolError) -> Error {
    match error {
        PoolError::Backend(error) => db_error(error),
        PoolError::Closed => Error::Closed,
        other => Error::Database(DatabaseError::new(
            DatabaseErrorKind::ConnectionLost,
            format!("no connection to PostgreSQL: {other}"),
            None,
        )),
    }
}

/// The error of a fenced call whose lease was lost.
pub(super) fn lease_lost(lease: LeaseRef) -> Error {
    Error::LeaseLost {
        id: lease.id,
        token: lease.token,
    }
}
