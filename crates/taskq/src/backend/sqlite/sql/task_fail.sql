-- ?1 id, ?2 lease token, ?3 now, ?4 error, ?5 retry delay or NULL to fail for good.
UPDATE taskq_tasks
SET state = CASE WHEN ?5 IS NULL THEN 'failed' ELSE 'queued' END,
    not_before = CASE WHEN ?5 IS NULL THEN not_before ELSE ?3 + ?5 END,
    finished_at = CASE WHEN ?5 IS NULL THEN ?3 ELSE NULL END,
    expires = NULL,
    last_error = ?4
WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
