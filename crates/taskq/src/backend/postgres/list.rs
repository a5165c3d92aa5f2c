//! A page of tasks (`list`), with conditions the planner can match to the
//! partial index of a state in a generic plan too.

use super::rows::read_stored_task;
use super::PostgresBackend;
use crate::backend::{PageOrder, StateIndex};
use crate::error::Result;
use crate::options::ListOptions;
use crate::state::State;
use crate::task::Task;

impl PostgresBackend {
    /// A page of tasks. The statement gives a state with the condition of
    /// the state's partial index, so that the planner may read the tasks
    /// of a state few tasks are in through it (sorting them by id) instead
    /// of all tasks in id order. Without `after`, the page starts after the
    /// smallest integer (or before the largest), so that the primary key
    /// starts it in any plan.
    pub(super) async fn list(&self, options: &ListOptions) -> Result<Vec<Task>> {
        let (page, after) = PageOrder::of(options);
        let filter = match options.state {
            // Conditions the planner can match to an index in a generic
            // plan too (the ready index starts with the action).
            Some(state) => format!(
                "{} AND state = $2 AND {}",
                StateIndex::of(state).holds,
                if options.action.is_some() {
                    "action = $1"
                } else {
                    "$1::text IS NULL"
                }
            ),
            None => "($1::text IS NULL OR action = $1) AND $2::text IS NULL".to_owned(),
        };
        // The follow-ups of a task through the index of parents; the text
        // of the last error with only ASCII letters folded (the C
        // collation), as SQLite's lower() does.
        let parent = match options.parent {
            Some(_) => "parent = $6",
            None => "$6::bigint IS NULL",
        };
        let error = match options.error_contains {
            Some(_) => "strpos(lower(last_error COLLATE \"C\"), lower($5::text COLLATE \"C\")) > 0",
            None => "$5::text IS NULL",
        };
        let filter = format!("{filter} AND {parent} AND {error}");
        let sql = self
            .sql
            .list
            .replace("{filter}", &filter)
            .replace("{after}", page.after)
            .replace("{order}", page.direction);
        let state = options.state.map(State::as_str);
        let limit = i64::from(options.limit);
        let parent = options.parent.map(|id| id.0);
        self.read(|| async {
            let rows = self
                .query(
                    &sql,
                    &[
                        &options.action,
                        &state,
                        &after,
                        &limit,
                        &options.error_contains,
                        &parent,
                    ],
                )
                .await?;
            rows.iter().map(read_stored_task).collect()
        })
        .await
    }
}
