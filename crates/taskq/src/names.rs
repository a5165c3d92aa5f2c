//! How tasks and their queues are named: task ids and action names.

use std::fmt;

use crate::error::{Error, Result};

/// The longest action name, in bytes.
pub const MAX_ACTION_LEN: usize = 255;

/// The id of a task. Ids grow and are never reused.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct TaskId(pub i64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<i64> for TaskId {
    fn from(id: i64) -> Self {
        TaskId(id)
    }
}

/// Checks an action name: 1 to [`MAX_ACTION_LEN`] bytes, no control
/// characters.
pub fn validate_action(action: &str) -> Result<()> {
    validate_name("action", "action name", action, MAX_ACTION_LEN)
}

/// Checks a name given by the caller (an action, a unique key, a worker's
/// name): 1 to `max_len` bytes, no control characters. `field` names it
/// in the error, `what` in its message.
pub(crate) fn validate_name(
    field: &'static str,
    what: &str,
    name: &str,
    max_len: usize,
) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(field, format!("the {what} is empty")));
    }
    if name.len() > max_len {
        return Err(Error::invalid(
            field,
            format!(
                "the {what} is {} bytes long; the limit is {max_len}",
                name.len()
            ),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("the {what} contains control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_bounded() {
        assert!(validate_action("email").is_ok());
        assert!(validate_action(&"a".repeat(MAX_ACTION_LEN)).is_ok());
        for bad in ["", "tab\there", &"a".repeat(MAX_ACTION_LEN + 1)] {
            let err = validate_action(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidInput {
                        field: "action",
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
        }
    }
}
