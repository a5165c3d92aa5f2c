-- ?1 action or NULL, ?2 state or NULL, ?3 after this id (the smallest or
-- largest integer when none: the primary key then starts the page), ?4
-- limit.
-- Filled in by store::list: {from} the table or, to list the tasks of a
-- state through that state's partial index, `taskq_tasks INDEXED BY ...`;
-- {filter} the action and state conditions; {after} `>` or `<`; {order}
-- ASC or DESC. The limit is a subquery: a bound LIMIT would make SQLite
-- prepare the statement again at every run.
SELECT id, action, payload, state, not_before, tries, max_tries, timeout_us, expires, parent, last_error, created_at, finished_at, lease_token, priority, unique_key, unique_states, unique_slot, cancel_requested, started_at, worker, attempts, concurrency_key, result, waiting_on FROM {from}
WHERE {filter} AND id {after} ?3
ORDER BY id {order}
LIMIT (SELECT ?4)
