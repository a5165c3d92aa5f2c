SELECT id, action, payload, state, not_before, tries, max_tries, timeout_us, expires, parent, last_error, created_at, finished_at, lease_token FROM {schema}.taskq_tasks WHERE id = $1
