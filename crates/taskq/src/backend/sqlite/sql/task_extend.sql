-- ?1 id, ?2 lease token, ?3 new lease end.
UPDATE taskq_tasks SET expires = ?3
WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
