//! The changes: retry, cancel and delete one task; retry or delete all
//! that a filter matches; purge; pause and resume an action; pause,
//! resume and run now a schedule. Each is a POST (the
//! guard has checked its CSRF token); the destructive ones are reached
//! through a confirmation page. Each answers with a page saying what
//! changed.

use std::time::Duration;

use askama::Template;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use serde::Deserialize;
use taskq::{CancelOutcome, TaskId};

use crate::page::{html, span, Chrome, Failure, PageResult};
use crate::task::task_id;
use crate::tasks::{Filter, FilterQuery};
use crate::App;

#[derive(Template)]
#[template(path = "done.html")]
struct Done {
    chrome: Chrome,
    title: String,
    lines: Vec<String>,
    /// Where to go next: path (under the dashboard) and label.
    links: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct Confirm {
    chrome: Chrome,
    title: String,
    question: String,
    /// Where the form posts, under the dashboard.
    action: String,
    fields: Vec<(&'static str, String)>,
    button: &'static str,
    back: String,
}

fn done(
    chrome: &Chrome,
    title: impl Into<String>,
    lines: Vec<String>,
    links: Vec<(String, &str)>,
) -> PageResult {
    let page = Done {
        chrome: chrome.clone(),
        title: title.into(),
        lines,
        links: links
            .into_iter()
            .map(|(path, label)| (path, label.to_owned()))
            .collect(),
    };
    html(&page, chrome)
}

fn task_link(id: TaskId) -> (String, &'static str) {
    (format!("/tasks/{id}"), "Back to the task")
}

fn overview_link() -> (String, &'static str) {
    ("/".to_owned(), "Overview")
}

/// `POST /tasks/{id}/retry`.
pub(crate) async fn retry_one(
    State(app): State<App>,
    chrome: Chrome,
    path: Result<Path<String>, PathRejection>,
) -> PageResult {
    let id = task_id(path, &chrome)?;
    app.queue
        .retry(id)
        .await
        .map_err(|e| Failure::from(e).on(&chrome))?;
    done(
        &chrome,
        format!("Task {id} retried"),
        vec![format!(
            "Task {id} is queued again, with its tries reset; it runs as soon as a worker is free."
        )],
        vec![task_link(id), overview_link()],
    )
}

/// `POST /tasks/{id}/cancel`.
pub(crate) async fn cancel_one(
    State(app): State<App>,
    chrome: Chrome,
    path: Result<Path<String>, PathRejection>,
) -> PageResult {
    let id = task_id(path, &chrome)?;
    let outcome = app
        .queue
        .cancel(id)
        .await
        .map_err(|e| Failure::from(e).on(&chrome))?;
    let line = match outcome {
        CancelOutcome::Cancelled => format!("Task {id} is cancelled; it will not run."),
        CancelOutcome::Requested => format!(
            "Task {id} is running: its cancellation was asked for. It ends cancelled unless its handler completes it first."
        ),
        CancelOutcome::AlreadyFinished(state) => {
            format!("Task {id} had already finished ({state}); nothing changed.")
        }
    };
    done(
        &chrome,
        format!("Task {id}"),
        vec![line],
        vec![task_link(id), overview_link()],
    )
}

/// `GET /tasks/{id}/delete`: asks first.
pub(crate) async fn confirm_delete_one(
    chrome: Chrome,
    path: Result<Path<String>, PathRejection>,
) -> PageResult {
    let id = task_id(path, &chrome)?;
    let page = Confirm {
        chrome: chrome.clone(),
        title: format!("Delete task {id}?"),
        question: format!("Task {id} and its history go for good. A worker running it is refused when it finishes."),
        action: format!("/tasks/{id}/delete"),
        fields: Vec::new(),
        button: "Delete the task",
        back: format!("/tasks/{id}"),
    };
    html(&page, &chrome)
}

/// `POST /tasks/{id}/delete`.
pub(crate) async fn delete_one(
    State(app): State<App>,
    chrome: Chrome,
    path: Result<Path<String>, PathRejection>,
) -> PageResult {
    let id = task_id(path, &chrome)?;
    app.queue
        .delete(id)
        .await
        .map_err(|e| Failure::from(e).on(&chrome))?;
    done(
        &chrome,
        format!("Task {id} deleted"),
        vec![format!("Task {id} is deleted.")],
        vec![("/tasks".to_owned(), "Tasks"), overview_link()],
    )
}

/// The filter a form or query string sent, or a 400.
fn filter_of<R: std::fmt::Display>(
    sent: Result<FilterQuery, R>,
    chrome: &Chrome,
) -> Result<Filter, Failure> {
    let query = sent.map_err(|e| Failure::bad_request(e.to_string()).on(chrome))?;
    Filter::parse(query).map_err(|f| f.on(chrome))
}

/// The filter in words, for a confirmation.
fn described(filter: &Filter) -> String {
    let fields = filter.fields();
    if fields.is_empty() {
        return "every task".to_owned();
    }
    let parts: Vec<String> = fields
        .iter()
        .map(|(name, value)| match *name {
            "error" => format!("last error contains {value:?}"),
            "parent" => format!("follow-ups of task {value}"),
            _ => format!("{name} {value}"),
        })
        .collect();
    format!("every task with {}", parts.join(", "))
}

/// `POST /retry-matching`: retries every failed or cancelled task the
/// form's filter matches.
pub(crate) async fn retry_matching(
    State(app): State<App>,
    chrome: Chrome,
    form: Result<Form<FilterQuery>, FormRejection>,
) -> PageResult {
    let filter = filter_of(form.map(|Form(f)| f), &chrome)?;
    let result = app
        .queue
        .retry_matching(&filter.options)
        .await
        .map_err(|e| Failure::from(e).on(&chrome))?;
    let mut lines = vec![format!(
        "{} queued again: {}.",
        count(result.retried.len(), "task", "tasks"),
        described(&filter)
    )];
    if !result.refused_for_their_key.is_empty() {
        lines.push(format!(
            "{} stayed, because another task holds its unique key: {}.",
            count(result.refused_for_their_key.len(), "task", "tasks"),
            ids(&result.refused_for_their_key)
        ));
    }
    let back = format!("/tasks?{}", filter.query(None));
    done(
        &chrome,
        "Retried",
        lines,
        vec![(back, "Back to the list"), overview_link()],
    )
}

/// `GET /delete-matching`: asks first.
pub(crate) async fn confirm_delete_matching(
    chrome: Chrome,
    query: Result<Query<FilterQuery>, QueryRejection>,
) -> PageResult {
    let filter = filter_of(query.map(|Query(q)| q), &chrome)?;
    let mut fields = filter.fields();
    fields.push(("order", filter.order.clone()));
    let page = Confirm {
        chrome: chrome.clone(),
        title: "Delete every matching task?".to_owned(),
        question: format!(
            "This deletes {}, in any state, for good. Workers running one are refused when they finish.",
            described(&filter)
        ),
        action: "/delete-matching".to_owned(),
        fields,
        button: "Delete them",
        back: format!("/tasks?{}", filter.query(None)),
    };
    html(&page, &chrome)
}

/// `POST /delete-matching`.
pub(crate) async fn delete_matching(
    State(app): State<App>,
    chrome: Chrome,
    form: Result<Form<FilterQuery>, FormRejection>,
) -> PageResult {
    let filter = filter_of(form.map(|Form(f)| f), &chrome)?;
    let deleted = app
        .queue
        .delete_matching(&filter.options)
        .await
        .map_err(|e| Failure::from(e).on(&chrome))?;
    done(
        &chrome,
        "Deleted",
        vec![format!(
            "{} deleted: {}.",
            count(deleted.len(), "task", "tasks"),
            described(&filter)
        )],
        vec![("/tasks".to_owned(), "Tasks"), overview_link()],
    )
}

/// What a purge names: a finished state and an age.
#[derive(Debug, Deserialize)]
pub(crate) struct PurgeQuery {
    state: Option<String>,
    older_than: Option<String>,
}

/// The state and age of a purge, or a 400.
fn purge_of(query: PurgeQuery, chrome: &Chrome) -> Result<(taskq::State, Duration), Failure> {
    let bad = |message: String| Failure::bad_request(message).on(chrome);
    let state = query.state.unwrap_or_default();
    let state = match state.parse::<taskq::State>() {
        Ok(state) if state.is_finished() => state,
        _ => {
            return Err(bad(format!(
                "Purge takes failed, cancelled or succeeded tasks, not {state:?}."
            )))
        }
    };
    let text = query.older_than.unwrap_or_else(|| "0s".to_owned());
    let older_than = humantime::parse_duration(text.trim()).map_err(|_| {
        bad(format!(
            "{text:?} is not a length of time; write for example 7d, 12h or 30m."
        ))
    })?;
    Ok((state, older_than))
}

/// `GET /purge`: asks first.
pub(crate) async fn confirm_purge(
    chrome: Chrome,
    query: Result<Query<PurgeQuery>, QueryRejection>,
) -> PageResult {
    let Query(query) = query.map_err(|e| Failure::bad_request(e.body_text()).on(&chrome))?;
    let (state, older_than) = purge_of(query, &chrome)?;
    let page = Confirm {
        chrome: chrome.clone(),
        title: format!("Purge {state} tasks?"),
        question: format!(
            "This deletes, for good, every {state} task that finished more than {} ago.",
            span(older_than)
        ),
        action: "/purge".to_owned(),
        fields: vec![
            ("state", state.as_str().to_owned()),
            (
                "older_than",
                humantime::format_duration(older_than).to_string(),
            ),
        ],
        button: "Purge",
        back: "/".to_owned(),
    };
    html(&page, &chrome)
}

/// `POST /purge`.
pub(crate) async fn purge(
    State(app): State<App>,
    chrome: Chrome,
    form: Result<Form<PurgeQuery>, FormRejection>,
) -> PageResult {
    let Form(query) = form.map_err(|e| Failure::bad_request(e.body_text()).on(&chrome))?;
    let (state, older_than) = purge_of(query, &chrome)?;
    let purged = app
        .queue
        .purge(state, older_than)
        .await
        .map_err(|e| Failure::from(e).on(&chrome))?;
    done(
        &chrome,
        "Purged",
        vec![format!(
            "{} deleted: {state}, finished more than {} ago.",
            count(purged as usize, "task", "tasks"),
            span(older_than)
        )],
        vec![overview_link()],
    )
}

/// The action a pause or resume names.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    action: String,
}

/// `POST /pause`.
pub(crate) async fn pause(
    State(app): State<App>,
    chrome: Chrome,
    form: Result<Form<ActionForm>, FormRejection>,
) -> PageResult {
    pause_or_resume(app, chrome, form, true).await
}

/// `POST /resume`.
pub(crate) async fn resume(
    State(app): State<App>,
    chrome: Chrome,
    form: Result<Form<ActionForm>, FormRejection>,
) -> PageResult {
    pause_or_resume(app, chrome, form, false).await
}

async fn pause_or_resume(
    app: App,
    chrome: Chrome,
    form: Result<Form<ActionForm>, FormRejection>,
    pause: bool,
) -> PageResult {
    let Form(form) = form.map_err(|e| Failure::bad_request(e.body_text()).on(&chrome))?;
    let action = &form.action;
    let changed = if pause {
        app.queue.pause(action).await
    } else {
        app.queue.resume(action).await
    }
    .map_err(|e| Failure::from(e).on(&chrome))?;
    let (title, line) = match (pause, changed) {
        (true, true) => ("Paused", format!("{action} is paused on every worker: running tasks finish, nothing new is claimed, enqueues still succeed.")),
        (true, false) => ("Paused", format!("{action} was already paused; nothing changed.")),
        (false, true) => ("Resumed", format!("{action} is resumed: workers claim its tasks again.")),
        (false, false) => ("Resumed", format!("{action} was not paused; nothing changed.")),
    };
    done(&chrome, title, vec![line], vec![overview_link()])
}

/// The schedule a schedule's button names.
#[derive(Debug, Deserialize)]
pub(crate) struct ScheduleForm {
    schedule: String,
}

/// What a schedule's button does.
#[derive(Clone, Copy)]
enum ScheduleChange {
    Pause,
    Resume,
    RunNow,
}

/// `POST /schedules/pause`.
pub(crate) async fn pause_schedule(
    State(app): State<App>,
    chrome: Chrome,
    form: Result<Form<ScheduleForm>, FormRejection>,
) -> PageResult {
    change_schedule(app, chrome, form, ScheduleChange::Pause).await
}

/// `POST /schedules/resume`.
pub(crate) async fn resume_schedule(
    State(app): State<App>,
    chrome: Chrome,
    form: Result<Form<ScheduleForm>, FormRejection>,
) -> PageResult {
    change_schedule(app, chrome, form, ScheduleChange::Resume).await
}

/// `POST /schedules/run-now`.
pub(crate) async fn run_schedule_now(
    State(app): State<App>,
    chrome: Chrome,
    form: Result<Form<ScheduleForm>, FormRejection>,
) -> PageResult {
    change_schedule(app, chrome, form, ScheduleChange::RunNow).await
}

async fn change_schedule(
    app: App,
    chrome: Chrome,
    form: Result<Form<ScheduleForm>, FormRejection>,
    change: ScheduleChange,
) -> PageResult {
    let Form(form) = form.map_err(|e| Failure::bad_request(e.body_text()).on(&chrome))?;
    let fail = |e: taskq::Error| Failure::from(e).on(&chrome);
    let (name, schedules) = (&form.schedule, app.queue.schedules());
    let (title, line) = match change {
        ScheduleChange::Pause => match schedules.pause(name).await.map_err(fail)? {
            true => ("Paused", format!("The schedule {name} is paused: no worker enqueues its ticks until it is resumed.")),
            false => ("Paused", format!("The schedule {name} was already paused; nothing changed.")),
        },
        ScheduleChange::Resume => match schedules.resume(name).await.map_err(fail)? {
            true => ("Resumed", format!("The schedule {name} is resumed; ticks missed meanwhile follow its missed-tick policy.")),
            false => ("Resumed", format!("The schedule {name} was not paused; nothing changed.")),
        },
        ScheduleChange::RunNow => {
            let enqueued = schedules.run_now(name).await.map_err(fail)?;
            let line = match enqueued.duplicate {
                false => format!("Task {} of the schedule {name} is enqueued, ready now.", enqueued.id),
                true => format!("Task {} already holds the schedule's unique key; nothing was added.", enqueued.id),
            };
            return done(&chrome, "Enqueued", vec![line], vec![task_link(enqueued.id), overview_link()]);
        }
    };
    done(&chrome, title, vec![line], vec![overview_link()])
}

/// `n` and the noun for it: `1 task`, `3 tasks`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Ids as a list: `4, 9, 12`.
fn ids(ids: &[TaskId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
