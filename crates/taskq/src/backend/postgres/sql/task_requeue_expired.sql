-- $1 one action, or NULL for all. Expired leases go back to the queue, or
-- fail for good when their tries are used up. Rows another transaction
-- holds are skipped: it is changing them anyway.
UPDATE {schema}.taskq_tasks AS t
SET state = CASE WHEN t.max_tries >= 0 AND t.tries >= t.max_tries THEN 'failed' ELSE 'queued' END,
    finished_at = CASE WHEN t.max_tries >= 0 AND t.tries >= t.max_tries THEN now() END,
    expires = NULL,
    last_error = 'the lease of try ' || t.tries || ' expired before the task finished'
WHERE t.id = ANY (ARRAY(
    SELECT id FROM {schema}.taskq_tasks
    WHERE state = 'running' AND expires <= now() AND ($1::text IS NULL OR action = $1)
    FOR UPDATE SKIP LOCKED
))
