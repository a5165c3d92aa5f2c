-- $1 action, $2 limit. SKIP LOCKED: concurrent claimers take different rows
-- instead of waiting for each other.
UPDATE {schema}.taskq_tasks AS t
SET state = 'running', tries = t.tries + 1, lease_token = t.lease_token + 1,
    expires = now() + t.timeout_us * interval '1 microsecond'
FROM (
    SELECT id FROM {schema}.taskq_tasks
    WHERE action = $1 AND state = 'queued' AND not_before <= now()
    ORDER BY not_before, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) AS picked
WHERE t.id = picked.id
RETURNING t.id, t.action, t.payload, t.state, t.not_before, t.tries, t.max_tries, t.timeout_us, t.expires, t.parent, t.last_error, t.created_at, t.finished_at, t.lease_token
