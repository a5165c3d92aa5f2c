-- ?1 id, ?2 lease token, ?3 now, ?4 delay. A release without delay keeps
-- the task's place in line.
UPDATE taskq_tasks
SET state = 'queued', tries = tries - 1, expires = NULL,
    not_before = CASE WHEN ?4 > 0 THEN ?3 + ?4 ELSE not_before END
WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
