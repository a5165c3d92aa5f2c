-- ?1 id, ?2 lease token, ?3 new lease end. Returns whether the task's
-- cancellation was asked for.
UPDATE taskq_tasks SET expires = ?3
WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
RETURNING cancel_requested IS NOT NULL
