-- ?1 id, ?2 lease token, ?3 now, ?4 error, ?5 retry delay or NULL to end
-- the task, ?6 the state it ends in then ('failed' or 'cancelled'). A
-- task whose cancellation was asked for ends cancelled whatever the
-- caller asked. Records the try in the task's attempts (the newest 20 are
-- kept); returns the new state.
UPDATE taskq_tasks
SET state = CASE WHEN cancel_requested IS NOT NULL THEN 'cancelled' WHEN ?5 IS NULL THEN ?6 ELSE 'queued' END,
    not_before = CASE WHEN ?5 IS NULL OR cancel_requested IS NOT NULL THEN not_before ELSE ?3 + ?5 END,
    finished_at = CASE WHEN ?5 IS NULL OR cancel_requested IS NOT NULL THEN ?3 ELSE NULL END,
    expires = NULL,
    last_error = ?4,
    attempts = json_insert(
        CASE WHEN json_array_length(attempts) >= 20 THEN json_remove(attempts, '$[0]') ELSE coalesce(attempts, '[]') END,
        '$[#]',
        json_object('n', tries, 'start', started_at, 'end', ?3,
                    'outcome', CASE WHEN cancel_requested IS NOT NULL OR ?6 = 'cancelled' THEN 'cancelled'
                                    WHEN ?5 IS NULL THEN 'failed' ELSE 'retried' END,
                    'error', ?4, 'worker', json(worker)))
WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
RETURNING state
