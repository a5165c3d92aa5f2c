-- $1 action or NULL, $2 state or NULL, $3 after this id, $4 limit, $5 text
-- of the last error or NULL, $6 parent or NULL.
-- {filter}, {after} and {order}: see task_list.
SELECT id, action, payload, state, not_before, tries, max_tries, timeout_us, expires, parent, last_error, created_at, finished_at, lease_token, priority, unique_key, unique_states, unique_slot, cancel_requested, started_at, worker, attempts, concurrency_key, result, waiting_on FROM {schema}.taskq_tasks
WHERE {filter} AND id {after} $3
ORDER BY id {order}
LIMIT $4
