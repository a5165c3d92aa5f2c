-- ?1 now, ?2 one action or NULL for all. Expired leases go back to the
-- queue, or fail for good when their tries are used up.
UPDATE taskq_tasks
SET state = CASE WHEN max_tries >= 0 AND tries >= max_tries THEN 'failed' ELSE 'queued' END,
    finished_at = CASE WHEN max_tries >= 0 AND tries >= max_tries THEN ?1 ELSE NULL END,
    expires = NULL,
    last_error = 'the lease of try ' || tries || ' expired before the task finished'
WHERE state = 'running' AND expires <= ?1 AND (?2 IS NULL OR action = ?2)
