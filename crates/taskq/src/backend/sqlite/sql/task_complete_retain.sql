-- ?1 id, ?2 lease token, ?3 now.
UPDATE taskq_tasks
SET state = 'succeeded', expires = NULL, finished_at = ?3
WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
