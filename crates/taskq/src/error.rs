//! The one error type of taskq, with variants a caller can act on.

use std::fmt;
use std::sync::Arc;

use crate::names::TaskId;
use crate::state::State;

/// A `Result` whose error is taskq's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in taskq.
///
/// Match on the variants to decide what to do; the messages read as
/// sentences and are safe to show to an operator.
///
/// It is `Send + Sync + 'static`, so an application's own error type can
/// wrap it, and a database failure keeps the driver's error as its
/// [`source`](std::error::Error::source) (a `rusqlite::Error` or a
/// `tokio_postgres::Error`), with a portable kind beside it:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[derive(Debug, thiserror::Error)]
/// enum AppError {
///     #[error("could not queue the task")]
///     Queue(#[from] taskq::Error),
/// }
///
/// async fn signup(queue: &taskq::Queue) -> Result<(), AppError> {
///     queue.enqueue("welcome-email", &"ada@example.com").await?;
///     Ok(())
/// }
/// # let dir = tempfile::tempdir().unwrap();
/// # let queue = taskq::Queue::connect(dir.path().join("q.db").to_str().unwrap()).await.unwrap();
/// # signup(&queue).await.unwrap();
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No task has this id: it never existed, was completed, or was deleted.
    #[error("task {id} does not exist (it may have been completed or deleted)")]
    TaskNotFound {
        /// The id that was looked up.
        id: TaskId,
    },

    /// No schedule has this name: it was never declared, or was removed.
    #[error("schedule {name:?} does not exist")]
    ScheduleNotFound {
        /// The name that was looked up.
        name: String,
    },

    /// The lease is no longer held: the task was claimed again after the
    /// lease expired, or it was released, failed, completed or deleted.
    /// The call changed nothing.
    #[error("the lease on task {id} (token {token}) is no longer held; the call changed nothing")]
    LeaseLost {
        /// The task the lease was on.
        id: TaskId,
        /// The fencing token of the lost lease.
        token: i64,
    },

    /// An argument was out of range or malformed.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// Which argument or option was wrong.
        field: &'static str,
        /// Why it was rejected, in words.
        reason: String,
    },

    /// The task is in a state that does not allow the operation (for
    /// example retrying a task that has not failed).
    #[error("task {id} is {actual}, but the operation needs it to be {expected}")]
    WrongState {
        /// The task in question.
        id: TaskId,
        /// The state it is in.
        actual: State,
        /// The state the operation needs.
        expected: State,
    },

    /// Another task of the action holds the unique key that the operation
    /// would give this one (a retry keeping its key, say). The call
    /// changed nothing.
    #[error("task {id} cannot take the unique key {key:?} of action {action:?}: task {existing} holds it")]
    Duplicate {
        /// The task the operation was on.
        id: TaskId,
        /// Its action.
        action: String,
        /// The key.
        key: String,
        /// The task that holds the key.
        existing: TaskId,
    },

    /// The database was migrated by a newer version of taskq.
    #[error("the database schema is at version {found}, newer than version {supported} that this taskq supports; upgrade taskq")]
    SchemaTooNew {
        /// The schema version found in the database.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },

    /// The database has no taskq schema yet, or an older one.
    #[error("{}", schema_too_old(*found, *needed))]
    SchemaTooOld {
        /// The schema version found in the database (0: none).
        found: i64,
        /// The schema version this build needs.
        needed: i64,
    },

    /// An applied migration differs from the one this build ships, which
    /// means the schema was changed by hand or by an incompatible build.
    #[error("migration {version} in the database does not match the one shipped with taskq (checksum differs)")]
    MigrationMismatch {
        /// The migration number.
        version: i64,
    },

    /// The payload could not be encoded as JSON.
    #[error("the payload could not be encoded as JSON: {source}")]
    PayloadEncode {
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// The payload of a task could not be decoded into the requested type.
    /// Retrying will not help.
    #[error("the payload of task {id} could not be decoded: {source}")]
    PayloadDecode {
        /// The task whose payload it is.
        id: TaskId,
        /// The deserializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// The result of a task could not be decoded into the requested type.
    #[error("the result of task {id} could not be decoded: {source}")]
    ResultDecode {
        /// The task whose result it is.
        id: TaskId,
        /// The deserializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// The database failed or refused the operation.
    #[error(transparent)]
    Database(#[from] DatabaseError),

    /// The queue has been shut down and takes no more calls.
    #[error("the queue is closed")]
    Closed,
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// A database failure of kind [`DatabaseErrorKind::Other`]: what
    /// should not happen unless the database was changed by hand.
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Error::Database(DatabaseError::new(DatabaseErrorKind::Other, message, None))
    }

    /// Whether no retry of the same call can succeed until someone changes
    /// the database, its files or taskq itself: a read-only or damaged
    /// database, a file that is not a database, missing rights, a schema
    /// written by a newer taskq. A worker stops on these instead of
    /// retrying.
    ///
    /// ```
    /// use taskq::{DatabaseError, DatabaseErrorKind, Error};
    ///
    /// let read_only = Error::Database(DatabaseError::new(DatabaseErrorKind::ReadOnly, "attempt to write a readonly database", None));
    /// assert!(read_only.is_permanent());
    /// let busy = Error::Database(DatabaseError::new(DatabaseErrorKind::Busy, "database is locked", None));
    /// assert!(!busy.is_permanent());
    /// ```
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::SchemaTooNew { .. } | Error::MigrationMismatch { .. } => true,
            Error::Database(e) => matches!(
                e.kind,
                DatabaseErrorKind::ReadOnly
                    | DatabaseErrorKind::PermissionDenied
                    | DatabaseErrorKind::NotADatabase
                    | DatabaseErrorKind::Corrupt
                    | DatabaseErrorKind::CannotOpen
            ),
            _ => false,
        }
    }

    /// The portable kind of a database error, if this is one.
    pub fn database_kind(&self) -> Option<DatabaseErrorKind> {
        match self {
            Error::Database(e) => Some(e.kind),
            _ => None,
        }
    }
}

/// The message of [`Error::SchemaTooOld`].
fn schema_too_old(found: i64, needed: i64) -> String {
    let how = "migrate it first (Queue::migrate, sqlite::migrate_in on your own connection, or `taskq migrate`)";
    if found == 0 {
        format!("the database has no taskq tables yet (this taskq needs schema version {needed}); {how}")
    } else {
        format!("the database schema is at version {found} but this taskq needs version {needed}; {how}")
    }
}

/// What kind of database failure happened, the same for every backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DatabaseErrorKind {
    /// Another connection held a lock longer than the busy timeout. Trying
    /// again later may succeed.
    Busy,
    /// A uniqueness constraint was violated.
    UniqueViolation,
    /// The connection to the database was lost or could not be made.
    ConnectionLost,
    /// The file is not a database of this backend's kind.
    NotADatabase,
    /// The database file is damaged.
    Corrupt,
    /// The disk or database is full.
    Full,
    /// The database refuses writes: a read-only file or file system, a
    /// read-only transaction or a standby server.
    ReadOnly,
    /// The database user lacks a right the operation needs.
    PermissionDenied,
    /// The database could not be opened: its file or directory does not
    /// exist, or the server refused the login (wrong password, no such
    /// database).
    CannotOpen,
    /// Any other failure; the message says more.
    Other,
}

impl fmt::Display for DatabaseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatabaseErrorKind::Busy => "database busy",
            DatabaseErrorKind::UniqueViolation => "unique constraint violated",
            DatabaseErrorKind::ConnectionLost => "connection lost",
            DatabaseErrorKind::NotADatabase => "not a database",
            DatabaseErrorKind::Corrupt => "database corrupt",
            DatabaseErrorKind::Full => "database or disk full",
            DatabaseErrorKind::ReadOnly => "database is read-only",
            DatabaseErrorKind::PermissionDenied => "permission denied",
            DatabaseErrorKind::CannotOpen => "cannot open the database",
            DatabaseErrorKind::Other => "database error",
        })
    }
}

/// A failure reported by the database, with a portable [`DatabaseErrorKind`].
///
/// It can be cloned, so one failed commit can be reported to every caller
/// whose work shared that commit.
#[derive(Clone, Debug)]
pub struct DatabaseError {
    /// What kind of failure this is.
    pub kind: DatabaseErrorKind,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl DatabaseError {
    /// A database error of `kind` with a message and the driver's error.
    pub fn new(
        kind: DatabaseErrorKind,
        message: impl Into<String>,
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        DatabaseError {
            kind,
            message: message.into(),
            source,
        }
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
