//! A page of tasks (`list`): through the partial index of a state few
//! tasks are in, or in id order, whichever reads fewer rows.

use rusqlite::{params, Connection};

use super::error::db_error;
use super::rows::read_stored_task;
use super::statements::stats;
use crate::backend::{PageOrder, StateIndex};
use crate::error::Result;
use crate::options::ListOptions;
use crate::state::State;
use crate::task::{ActionStats, Task};

/// A page of tasks. Without a state, or for a state that many tasks are
/// in, the tasks are read in id order until the page is full; for a state
/// that few are in, through that state's partial index (all of its tasks,
/// sorted): the 10 failed tasks among a million queued take 10 reads, not
/// a million.
pub(crate) fn list(conn: &Connection, options: &ListOptions) -> Result<Vec<Task>> {
    let through = match options.state {
        _ if options.parent.is_some() => Through::Parents,
        Some(state) if list_through_index(&stats(conn)?, options, state) => {
            Through::State(StateIndex::of(state))
        }
        _ => Through::Ids,
    };
    let (page, after) = PageOrder::of(options);
    conn.prepare_cached(&list_sql(options, page, through))
        .and_then(|mut s| {
            s.query_map(
                params![
                    options.action,
                    options.state.map(State::as_str),
                    after,
                    options.limit,
                    options.error_contains,
                    options.parent.map(|id| id.0),
                ],
                read_stored_task,
            )?
            .collect()
        })
        .map_err(db_error)
}

/// Which index a page of `list` is read through.
#[derive(Clone, Copy)]
enum Through {
    /// The primary key, in id order.
    Ids,
    /// A state's partial index (all of its tasks, sorted).
    State(StateIndex),
    /// The index of parents: the follow-ups of one task.
    Parents,
}

/// The statement of [`list`], read through `through`.
fn list_sql(options: &ListOptions, page: PageOrder, through: Through) -> String {
    let action = if options.action.is_some() {
        "action = ?1"
    } else {
        "?1 IS NULL"
    };
    let (from, filter) = match through {
        Through::State(index) => (
            format!("taskq_tasks INDEXED BY {}", index.name),
            format!("{} AND state = ?2 AND {action} AND ?6 IS NULL", index.holds),
        ),
        Through::Parents => (
            "taskq_tasks INDEXED BY taskq_tasks_parent".to_owned(),
            "parent = ?6 AND (?1 IS NULL OR action = ?1) AND (?2 IS NULL OR state = ?2)".to_owned(),
        ),
        Through::Ids => (
            "taskq_tasks NOT INDEXED".to_owned(),
            "(?1 IS NULL OR action = ?1) AND (?2 IS NULL OR state = ?2) AND ?6 IS NULL".to_owned(),
        ),
    };
    // Only ASCII letters are folded, as PostgreSQL's lower() does in the
    // C collation.
    let error = if options.error_contains.is_some() {
        "instr(lower(last_error), lower(?5)) > 0"
    } else {
        "?5 IS NULL"
    };
    include_str!("sql/task_list.sql")
        .replace("{from}", &from)
        .replace("{filter}", &format!("{filter} AND {error}"))
        .replace("{after}", page.after)
        .replace("{order}", page.direction)
}

/// Whether a page of tasks in `state` is found sooner through the state's
/// index, which means reading every task it holds, than by reading tasks
/// in id order, about `limit × total / matching` of them when the matching
/// tasks are spread evenly.
fn list_through_index(stats: &[ActionStats], options: &ListOptions, state: State) -> bool {
    let total: u64 = stats.iter().map(ActionStats::total).sum();
    let of_action = |row: &&ActionStats| {
        options
            .action
            .as_deref()
            .is_none_or(|action| row.action == action)
    };
    let matching: u64 = stats
        .iter()
        .filter(of_action)
        .map(|row| row.get(state))
        .sum();
    // The index of queued tasks starts with the action; the others hold
    // the tasks of every action together.
    let read = if state == State::Queued {
        matching
    } else {
        stats.iter().map(|row| row.get(state)).sum()
    };
    u128::from(read) * u128::from(matching.max(1)) <= u128::from(options.limit) * u128::from(total)
}

#[cfg(test)]
mod tests {
    use super::super::statements::tests::{migrated, plan};
    use super::*;
    use crate::options::Order;

    #[test]
    fn a_rare_state_is_listed_through_its_index_a_common_one_by_id() {
        let mut a = ActionStats::new("a");
        a.add(State::Queued, 1_000_000);
        a.add(State::Failed, 10);
        a.add(State::Running, 8);
        let mut b = ActionStats::new("b");
        b.add(State::Queued, 50);
        b.add(State::Succeeded, 1_000_000);
        let stats = [a, b];
        let through = |action: Option<&str>, state, limit| {
            let options = ListOptions {
                action: action.map(str::to_owned),
                state: Some(state),
                limit,
                ..ListOptions::default()
            };
            list_through_index(&stats, &options, state)
        };
        assert!(through(None, State::Failed, 100));
        assert!(through(None, State::Running, 100));
        assert!(!through(None, State::Queued, 100));
        assert!(!through(None, State::Succeeded, 100));
        // The ready index reads only the action's queued tasks.
        assert!(through(Some("b"), State::Queued, 100));
        assert!(!through(Some("a"), State::Queued, 100));
        // The finished index holds every action's: a's succeeded (none)
        // take a million reads through it, but two million by id.
        assert!(through(Some("a"), State::Succeeded, 100));
        assert!(!through(Some("b"), State::Succeeded, 100));
        assert!(through(None, State::Failed, 1));
        let empty = ListOptions::default();
        assert!(list_through_index(&[], &empty, State::Failed));
    }

    #[test]
    fn list_statements_read_the_index_they_name_or_the_ids_from_the_page_start() {
        let conn = migrated();
        for order in [Order::OldestFirst, Order::NewestFirst] {
            let range = match order {
                Order::OldestFirst => "PRIMARY KEY (rowid>?)",
                Order::NewestFirst => "PRIMARY KEY (rowid<?)",
            };
            for action in [None, Some("a".to_owned())] {
                for state in [
                    State::Queued,
                    State::Running,
                    State::Failed,
                    State::Succeeded,
                ] {
                    let options = ListOptions {
                        action: action.clone(),
                        state: Some(state),
                        order,
                        ..ListOptions::default()
                    };
                    let index = StateIndex::of(state);
                    let (page, after) = PageOrder::of(&options);
                    let args = params![
                        options.action,
                        state.as_str(),
                        after,
                        10,
                        None::<String>,
                        None::<i64>
                    ];
                    let through = plan(
                        &conn,
                        &list_sql(&options, page, Through::State(index)),
                        args,
                    );
                    assert!(
                        through.contains(&format!("INDEX {}", index.name)),
                        "{options:?}:\n{through}"
                    );
                    let by_id = plan(&conn, &list_sql(&options, page, Through::Ids), args);
                    assert!(by_id.contains(range), "{options:?}:\n{by_id}");
                }
            }
        }
    }

    #[test]
    fn follow_ups_are_listed_through_the_index_of_parents() {
        let conn = migrated();
        let options = ListOptions {
            parent: Some(crate::TaskId(7)),
            error_contains: Some("timeout".into()),
            ..ListOptions::default()
        };
        let (page, after) = PageOrder::of(&options);
        let args = params![None::<String>, None::<String>, after, 10, "timeout", 7];
        let found = plan(&conn, &list_sql(&options, page, Through::Parents), args);
        assert!(found.contains("INDEX taskq_tasks_parent"), "{found}");
    }
}
