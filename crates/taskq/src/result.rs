//! What a handler returns when it completes its task: a JSON value, kept
//! with the succeeded task (see [`TaskResult`]).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::task::{check_json, Task};

/// The largest result a task can keep, in bytes of JSON: 1 MiB. A result
/// is read back with its task (`Queue::get`, `taskq show`, the
/// dashboard); keep large outputs in your own storage and return where
/// they are.
pub const MAX_RESULT_LEN: usize = 1024 * 1024;

/// A task's result: one JSON value of at most [`MAX_RESULT_LEN`] bytes,
/// checked when it is made, so that completing with it cannot fail for
/// its size or form.
///
/// A task completed with a result is kept as succeeded, with the result,
/// whether or not the queue keeps completed tasks, until retention
/// removes it (`Retention::succeeded`); [`Task::result`] and
/// [`Task::result_json`] read it back.
///
/// ```
/// use taskq::TaskResult;
///
/// let result = TaskResult::json(&serde_json::json!({"thumbnail": "cat-128.png"}))?;
/// assert_eq!(result.as_bytes(), br#"{"thumbnail":"cat-128.png"}"#);
/// let too_big = "x".repeat(taskq::MAX_RESULT_LEN);
/// assert!(matches!(
///     TaskResult::json(&too_big),
///     Err(taskq::Error::InvalidInput { field: "result", .. })
/// ));
/// # Ok::<(), taskq::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskResult(Vec<u8>);

impl TaskResult {
    /// `value` as JSON; [`Error::InvalidInput`] (field `result`) if it
    /// does not serialize or is larger than [`MAX_RESULT_LEN`].
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::invalid("result", format!("not serializable as JSON: {e}")))?;
        Self::checked(bytes)
    }

    /// Bytes that are already one JSON value, checked like [`json`](Self::json).
    pub fn json_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = bytes.into();
        check_json(&bytes).map_err(|e| match e {
            Error::InvalidInput { reason, .. } => Error::invalid("result", reason),
            other => other,
        })?;
        Self::checked(bytes)
    }

    fn checked(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() > MAX_RESULT_LEN {
            return Err(Error::invalid(
                "result",
                format!(
                    "{} bytes is more than the limit of {MAX_RESULT_LEN} bytes",
                    bytes.len()
                ),
            ));
        }
        Ok(TaskResult(bytes))
    }

    /// The JSON bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The JSON bytes, for the backends.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl Task {
    /// Decodes the task's result (what its handler returned with
    /// [`Outcome::complete_with_result`](crate::worker::Outcome::complete_with_result))
    /// into `T`; `None` if it has none.
    pub fn result_json<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let Some(bytes) = &self.result else {
            return Ok(None);
        };
        serde_json::from_slice(bytes)
            .map(Some)
            .map_err(|source| Error::ResultDecode {
                id: self.id,
                source,
            })
    }
}
