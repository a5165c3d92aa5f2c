//! One task: everything stored about it, its attempts, parent,
//! follow-ups, dependencies and dependents.

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use taskq::{ListOptions, Order, TaskId};

use crate::page::{html, relative, span, time, Chrome, Failure, PageResult};
use crate::App;

/// How many follow-ups the page lists.
const FOLLOW_UPS_SHOWN: u32 = 50;

/// The id in the path, or a 400.
pub(crate) fn task_id(
    path: Result<Path<String>, PathRejection>,
    chrome: &Chrome,
) -> Result<TaskId, Failure> {
    let bad = |text: &str| {
        Failure::bad_request(format!(
            "{text:?} is not a task id: ids are positive whole numbers."
        ))
        .on(chrome)
    };
    let Path(text) = path.map_err(|_| bad(""))?;
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(TaskId(id)),
        _ => Err(bad(&text)),
    }
}

/// One attempt's row.
pub(crate) struct AttemptRow {
    number: i32,
    started: String,
    ran: String,
    outcome: String,
    worker: String,
    error: String,
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    chrome: Chrome,
    id: i64,
    state: &'static str,
    retryable: bool,
    cancellable: bool,
    fields: Vec<(&'static str, String)>,
    parent: Option<i64>,
    last_error: Option<String>,
    payload_kind: &'static str,
    payload: String,
    /// What the handler returned, pretty-printed; only succeeded tasks.
    result: Option<String>,
    attempts: Vec<AttemptRow>,
    follow_ups: Vec<(i64, String, &'static str)>,
    more_follow_ups: bool,
    /// The tasks it waits (or waited) for, and those that wait for it:
    /// id, action and state ("gone" once deleted).
    dependencies: Vec<(i64, String, &'static str)>,
    dependents: Vec<(i64, String, &'static str)>,
}

/// A task's links as the page lists them.
fn link_rows(links: &[taskq::Link]) -> Vec<(i64, String, &'static str)> {
    links
        .iter()
        .map(|link| {
            (
                link.id.0,
                link.action.clone().unwrap_or_else(|| "-".to_owned()),
                link.state.map_or("gone", taskq::State::as_str),
            )
        })
        .collect()
}

/// `GET /tasks/{id}`.
pub(crate) async fn page(
    State(app): State<App>,
    chrome: Chrome,
    path: Result<Path<String>, PathRejection>,
) -> PageResult {
    let id = task_id(path, &chrome)?;
    let fail = |error: taskq::Error| Failure::from(error).on(&chrome);
    let task = app
        .queue
        .get(id)
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(taskq::Error::TaskNotFound { id }))?;
    let children = app
        .queue
        .list(&ListOptions {
            parent: Some(id),
            order: Order::OldestFirst,
            limit: FOLLOW_UPS_SHOWN + 1,
            ..ListOptions::default()
        })
        .await
        .map_err(fail)?;
    let links = app.queue.links(id).await.map_err(fail)?;
    let result = task.result.as_deref().map(|bytes| payload(bytes).1);
    let (payload_kind, payload) = payload(&task.payload);
    let page = TaskPage {
        id: id.0,
        state: task.state.as_str(),
        retryable: matches!(task.state, taskq::State::Failed | taskq::State::Cancelled),
        cancellable: matches!(
            task.state,
            taskq::State::Waiting | taskq::State::Queued | taskq::State::Running
        ),
        fields: fields(&task),
        parent: task.parent.map(|p| p.0),
        last_error: task.last_error.clone(),
        payload_kind,
        payload,
        result,
        attempts: task.attempts.iter().rev().map(attempt_row).collect(),
        more_follow_ups: children.len() > FOLLOW_UPS_SHOWN as usize,
        follow_ups: children
            .iter()
            .take(FOLLOW_UPS_SHOWN as usize)
            .map(|c| (c.id.0, c.action.clone(), c.state.as_str()))
            .collect(),
        dependencies: link_rows(&links.dependencies),
        dependents: link_rows(&links.dependents),
        chrome: chrome.clone(),
    };
    html(&page, &chrome)
}

/// The task's options and times, as label and text.
fn fields(task: &taskq::Task) -> Vec<(&'static str, String)> {
    let at = |when: std::time::SystemTime| format!("{} ({})", time(when), relative(when));
    let optional = |when: Option<std::time::SystemTime>| when.map_or_else(|| "-".to_owned(), at);
    let max_tries = if task.max_tries < 0 {
        "forever".to_owned()
    } else {
        task.max_tries.to_string()
    };
    let mut fields = vec![
        ("Action", task.action.clone()),
        ("Tries", format!("{} of {max_tries}", task.tries)),
        ("Priority", task.priority.to_string()),
        ("Lease length", span(task.timeout)),
        ("Created", at(task.created_at)),
        ("Runs not before", at(task.not_before)),
        ("Last try started", optional(task.started_at)),
        ("Lease ends", optional(task.expires)),
        ("Finished", optional(task.finished_at)),
        (
            "Held by",
            task.worker
                .as_ref()
                .filter(|_| task.state == taskq::State::Running)
                .map_or_else(|| "-".to_owned(), ToString::to_string),
        ),
    ];
    if let Some(key) = &task.unique_key {
        let states: Vec<&str> = task.unique_states.iter().map(|s| s.as_str()).collect();
        fields.push(("Unique key", format!("{key} (among {})", states.join(", "))));
    }
    if let Some(asked) = task.cancel_requested {
        fields.push(("Cancel asked", at(asked)));
    }
    fields
}

fn attempt_row(attempt: &taskq::Attempt) -> AttemptRow {
    AttemptRow {
        number: attempt.number,
        started: attempt.started_at.map_or_else(|| "-".to_owned(), time),
        ran: attempt
            .started_at
            .and_then(|started| attempt.ended_at.duration_since(started).ok())
            .map_or_else(|| "-".to_owned(), span),
        outcome: attempt.outcome.to_string(),
        worker: attempt
            .worker
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string),
        error: attempt.error.clone().unwrap_or_default(),
    }
}

/// The payload as pretty JSON, as text, or as a hex dump.
fn payload(bytes: &[u8]) -> (&'static str, String) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if let Ok(pretty) = serde_json::to_string_pretty(&value) {
            return ("JSON", pretty);
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return ("text", text.to_owned());
    }
    let shown = &bytes[..bytes.len().min(4096)];
    let mut dump = String::new();
    for (line, chunk) in shown.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        dump.push_str(&format!("{:08x}  {}\n", line * 16, hex.join(" ")));
    }
    if bytes.len() > shown.len() {
        dump.push_str(&format!("… {} bytes in all\n", bytes.len()));
    }
    ("bytes", dump)
}

#[cfg(test)]
mod tests {
    use super::payload;

    #[test]
    fn payloads_show_as_json_text_or_hex() {
        assert_eq!(
            payload(br#"{"a":1}"#),
            ("JSON", "{\n  \"a\": 1\n}".to_owned())
        );
        assert_eq!(payload(b"plain words"), ("text", "plain words".to_owned()));
        let (kind, dump) = payload(&[0xff, 0x00, 0x10]);
        assert_eq!((kind, dump.as_str()), ("bytes", "00000000  ff 00 10\n"));
    }
}
