-- ?1 id, ?2 now.
UPDATE taskq_tasks
SET state = 'queued', tries = 0, not_before = ?2, finished_at = NULL
WHERE id = ?1 AND state = 'failed'
