-- ?1 id, ?2 lease token, ?3 now, ?4 its result (JSON) or NULL. Records the
-- try in the task's attempts (the newest 20 are kept).
UPDATE taskq_tasks
SET state = 'succeeded', expires = NULL, finished_at = ?3, result = ?4,
    attempts = json_insert(
        CASE WHEN json_array_length(attempts) >= 20 THEN json_remove(attempts, '$[0]') ELSE coalesce(attempts, '[]') END,
        '$[#]',
        json_object('n', tries, 'start', started_at, 'end', ?3, 'outcome', 'succeeded', 'error', NULL, 'worker', json(worker)))
WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
