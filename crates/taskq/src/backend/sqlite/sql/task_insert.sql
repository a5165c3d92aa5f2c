INSERT INTO taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, parent, created_at)
VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7)
