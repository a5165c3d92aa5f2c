-- ?1 now, ?2 one action or NULL for all, ?3 first backoff, ?4 longest
-- backoff (microseconds). Expired leases go back to the queue (at once
-- after a first try, else after a backoff that doubles with each try), or
-- fail for good when their tries are used up.
UPDATE taskq_tasks
SET state = CASE WHEN max_tries >= 0 AND tries >= max_tries THEN 'failed' ELSE 'queued' END,
    finished_at = CASE WHEN max_tries >= 0 AND tries >= max_tries THEN ?1 ELSE NULL END,
    not_before = CASE WHEN (max_tries >= 0 AND tries >= max_tries) OR tries <= 1 THEN not_before
                      ELSE ?1 + min(?4, ?3 << min(tries - 2, 20)) END,
    expires = NULL,
    last_error = 'the lease of try ' || tries || ' expired before the task finished'
WHERE state = 'running' AND expires <= ?1 AND (?2 IS NULL OR action = ?2)
