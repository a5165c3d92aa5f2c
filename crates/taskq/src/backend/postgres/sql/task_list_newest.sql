-- $1 action or NULL, $2 state or NULL, $3 after id or NULL, $4 limit.
SELECT id, action, payload, state, not_before, tries, max_tries, timeout_us, expires, parent, last_error, created_at, finished_at, lease_token FROM {schema}.taskq_tasks
WHERE ($1::text IS NULL OR action = $1) AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $4
