//! Assertions on what is enqueued: the queued tasks of an action (due now
//! or later), matched by payload fields or by any test of the task.

use serde_json::Value;

use crate::error::Result;
use crate::options::ListOptions;
use crate::queue::Queue;
use crate::state::State;
use crate::task::Task;

/// What [`assert_enqueued`] looks for in a task.
///
/// A JSON value matches a task whose payload holds it: an object matches
/// an object with at least those fields (each matching in turn, so
/// `json!({})` matches any object), anything else must be equal. A
/// closure `Fn(&Task) -> bool` can test anything else: the priority, the
/// time, the unique key.
pub trait Matcher {
    /// Whether `task` is what is looked for.
    fn matches(&self, task: &Task) -> bool;
    /// What is looked for, for the panic message.
    fn describe(&self) -> String;
}

impl Matcher for Value {
    fn matches(&self, task: &Task) -> bool {
        serde_json::from_slice::<Value>(&task.payload).is_ok_and(|payload| holds(&payload, self))
    }

    fn describe(&self) -> String {
        format!("a payload holding {self}")
    }
}

impl<F: Fn(&Task) -> bool> Matcher for F {
    fn matches(&self, task: &Task) -> bool {
        self(task)
    }

    fn describe(&self) -> String {
        "a task the closure accepts".to_owned()
    }
}

/// Whether `payload` holds `wanted` (see [`Matcher`]).
fn holds(payload: &Value, wanted: &Value) -> bool {
    match (payload, wanted) {
        (Value::Object(have), Value::Object(want)) => want
            .iter()
            .all(|(key, value)| have.get(key).is_some_and(|v| holds(v, value))),
        _ => payload == wanted,
    }
}

/// The queued tasks of `action` (due now or later), oldest first, however
/// many there are.
pub async fn enqueued(queue: &Queue, action: &str) -> Result<Vec<Task>> {
    let mut options = ListOptions {
        action: Some(action.to_owned()),
        state: Some(State::Queued),
        limit: crate::options::MAX_LIST_LIMIT,
        ..ListOptions::default()
    };
    let mut tasks = Vec::new();
    loop {
        let page = queue.list(&options).await?;
        let full = page.len() == options.limit as usize;
        options.after = page.last().map(|task| task.id);
        tasks.extend(page);
        if !full {
            return Ok(tasks);
        }
    }
}

/// The payload of `task` as text, for a panic message.
fn shown(task: &Task) -> String {
    let payload = String::from_utf8_lossy(&task.payload);
    format!(
        "  task {} (priority {}): {payload:.200}",
        task.id, task.priority
    )
}

/// Asserts that a queued task of `action` matches `matcher` (see
/// [`Matcher`]) and returns the oldest that does; panics, listing what is
/// queued, when none does.
pub async fn assert_enqueued(queue: &Queue, action: &str, matcher: impl Matcher) -> Task {
    let tasks = enqueued(queue, action)
        .await
        .unwrap_or_else(|e| panic!("could not list the queued tasks of {action:?}: {e}"));
    let listed: Vec<String> = tasks.iter().map(shown).collect();
    match tasks.into_iter().find(|task| matcher.matches(task)) {
        Some(task) => task,
        None => panic!(
            "no queued task of {action:?} matches {}; queued:\n{}",
            matcher.describe(),
            if listed.is_empty() {
                "  none".to_owned()
            } else {
                listed.join("\n")
            }
        ),
    }
}

/// Asserts that no queued task of `action` matches `matcher`; panics,
/// naming the first that does.
pub async fn assert_not_enqueued(queue: &Queue, action: &str, matcher: impl Matcher) {
    let tasks = enqueued(queue, action)
        .await
        .unwrap_or_else(|e| panic!("could not list the queued tasks of {action:?}: {e}"));
    if let Some(task) = tasks.iter().find(|task| matcher.matches(task)) {
        panic!(
            "a queued task of {action:?} matches {}:\n{}",
            matcher.describe(),
            shown(task)
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::holds;

    #[test]
    fn a_payload_holds_the_fields_asked_for() {
        let payload = json!({"to": "ada", "cc": ["bob"], "meta": {"tries": 2, "lang": "en"}});
        assert!(holds(&payload, &json!({})));
        assert!(holds(&payload, &json!({"to": "ada"})));
        assert!(holds(&payload, &json!({"meta": {"lang": "en"}})));
        assert!(!holds(&payload, &json!({"to": "bob"})));
        assert!(!holds(&payload, &json!({"bcc": null})));
        assert!(!holds(&payload, &json!({"cc": []})), "arrays must be equal");
        assert!(holds(&json!(42), &json!(42)));
        assert!(!holds(&json!("42"), &json!(42)));
    }
}
