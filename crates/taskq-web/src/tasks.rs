//! The task list: a filter by action, state, error text and parent, in
//! newest or oldest order, a page at a time (keyset paging by id).

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use taskq::{ListOptions, Order, TaskId};

use crate::page::{html, relative, time, Chrome, Failure, PageResult};
use crate::App;

/// The longest page the list shows.
const MAX_PAGE: u32 = 500;

/// How long an error shows in the list before it is cut.
const ERROR_SHOWN: usize = 160;

/// A filter as the query string (or a form) sends it; every field may be
/// missing or empty.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FilterQuery {
    action: Option<String>,
    state: Option<String>,
    error: Option<String>,
    order: Option<String>,
    after: Option<String>,
    parent: Option<String>,
    limit: Option<String>,
}

/// A checked filter, as the page shows it again.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    pub(crate) action: String,
    pub(crate) state: String,
    pub(crate) error: String,
    /// `newest` or `oldest`.
    pub(crate) order: String,
    pub(crate) after: Option<i64>,
    pub(crate) parent: Option<i64>,
    pub(crate) limit: u32,
    pub(crate) options: ListOptions,
}

/// A positive id from the query, or why not.
fn id_of(field: &str, text: &str) -> Result<i64, Failure> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Failure::bad_request(format!("{field} must be a task id, not {text:?}.")))
}

impl Filter {
    /// Checks what the query sent.
    pub(crate) fn parse(query: FilterQuery) -> Result<Self, Failure> {
        let given = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let action = given(query.action);
        let state = match given(query.state) {
            Some(text) => Some(text.parse::<taskq::State>().map_err(|_| {
                Failure::bad_request(format!(
                    "There is no state {text:?}: use queued, running, failed, succeeded or cancelled."
                ))
            })?),
            None => None,
        };
        let error = given(query.error);
        let order = match given(query.order).as_deref() {
            None | Some("newest") => Order::NewestFirst,
            Some("oldest") => Order::OldestFirst,
            Some(other) => {
                return Err(Failure::bad_request(format!(
                    "The order is newest or oldest, not {other:?}."
                )))
            }
        };
        let after = given(query.after).map(|t| id_of("after", &t)).transpose()?;
        let parent = given(query.parent)
            .map(|t| id_of("parent", &t))
            .transpose()?;
        let limit = match given(query.limit) {
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    Failure::bad_request(format!("The page size is 1 to {MAX_PAGE}."))
                })?,
            None => 50,
        };
        let options = ListOptions {
            action: action.clone(),
            state,
            order,
            after: after.map(TaskId),
            limit,
            error_contains: error.clone(),
            parent: parent.map(TaskId),
        };
        options.validate().map_err(Failure::from)?;
        Ok(Filter {
            action: action.unwrap_or_default(),
            state: state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            error: error.unwrap_or_default(),
            order: if order == Order::NewestFirst {
                "newest"
            } else {
                "oldest"
            }
            .to_owned(),
            after,
            parent,
            limit,
            options,
        })
    }

    /// The filter's fields that are set, without the page position.
    pub(crate) fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = Vec::new();
        for (name, value) in [
            ("action", &self.action),
            ("state", &self.state),
            ("error", &self.error),
        ] {
            if !value.is_empty() {
                fields.push((name, value.clone()));
            }
        }
        if let Some(parent) = self.parent {
            fields.push(("parent", parent.to_string()));
        }
        fields
    }

    /// The query string of this filter, in this order, from after `after`.
    pub(crate) fn query(&self, after: Option<i64>) -> String {
        let mut fields = self.fields();
        fields.push(("order", self.order.clone()));
        if let Some(after) = after {
            fields.push(("after", after.to_string()));
        }
        serde_urlencoded::to_string(fields).unwrap_or_default()
    }

    /// Whether every matching task can be retried (a retry needs the
    /// state failed or cancelled).
    pub(crate) fn retryable(&self) -> bool {
        self.state == "failed" || self.state == "cancelled"
    }
}

/// One task's row.
pub(crate) struct Row {
    id: i64,
    action: String,
    state: &'static str,
    tries: String,
    priority: i16,
    created_at: String,
    created_ago: String,
    when: String,
    error: String,
}

impl Row {
    fn of(task: &taskq::Task) -> Self {
        let tries = if task.max_tries < 0 {
            format!("{}/∞", task.tries)
        } else {
            format!("{}/{}", task.tries, task.max_tries)
        };
        let when = match (task.finished_at, task.expires) {
            (Some(done), _) => format!("ended {}", relative(done)),
            (None, Some(expires)) => format!("lease ends {}", relative(expires)),
            (None, None) => format!("runs {}", relative(task.not_before)),
        };
        let mut error = task.last_error.clone().unwrap_or_default();
        if error.chars().count() > ERROR_SHOWN {
            error = error.chars().take(ERROR_SHOWN).collect::<String>() + "…";
        }
        Row {
            id: task.id.0,
            action: task.action.clone(),
            state: task.state.as_str(),
            tries,
            priority: task.priority,
            created_at: time(task.created_at),
            created_ago: relative(task.created_at),
            when,
            error,
        }
    }
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct Tasks {
    chrome: Chrome,
    filter: Filter,
    actions: Vec<String>,
    /// Each state, and whether the filter has it.
    states: Vec<(&'static str, bool)>,
    rows: Vec<Row>,
    first_page: String,
    next_page: Option<String>,
    this_filter: String,
    fields: Vec<(&'static str, String)>,
    retryable: bool,
}

/// `GET /tasks`.
pub(crate) async fn page(
    State(app): State<App>,
    chrome: Chrome,
    query: Result<Query<FilterQuery>, QueryRejection>,
) -> PageResult {
    let fail = |error: taskq::Error| Failure::from(error).on(&chrome);
    let Query(query) = query.map_err(|e| Failure::bad_request(e.body_text()).on(&chrome))?;
    let filter = Filter::parse(query).map_err(|f| f.on(&chrome))?;
    let tasks = app.queue.list(&filter.options).await.map_err(fail)?;
    let actions = app
        .queue
        .stats()
        .await
        .map_err(fail)?
        .into_iter()
        .map(|row| row.action)
        .collect();
    let full = tasks.len() == filter.limit as usize;
    let next_page = tasks
        .last()
        .filter(|_| full)
        .map(|last| filter.query(Some(last.id.0)));
    let page = Tasks {
        first_page: filter.query(None),
        this_filter: filter.query(None),
        fields: filter.fields(),
        retryable: filter.retryable(),
        next_page,
        rows: tasks.iter().map(Row::of).collect(),
        actions,
        states: taskq::State::ALL
            .iter()
            .map(|s| (s.as_str(), s.as_str() == filter.state))
            .collect(),
        filter,
        chrome: chrome.clone(),
    };
    html(&page, &chrome)
}
