-- ?1 now, ?2 action, ?3 limit.
UPDATE taskq_tasks
SET state = 'running', tries = tries + 1, lease_token = lease_token + 1, expires = ?1 + timeout_us
WHERE id IN (
    SELECT id FROM taskq_tasks
    WHERE action = ?2 AND state = 'queued' AND not_before <= ?1
    ORDER BY not_before, id
    LIMIT ?3
)
RETURNING id, action, payload, state, not_before, tries, max_tries, timeout_us, expires, parent, last_error, created_at, finished_at, lease_token
