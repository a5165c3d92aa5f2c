-- ?1 id, ?2 lease token, ?3 now, ?4 delay. A release without delay keeps
-- the task's place in line. A task whose cancellation was asked for ends
-- cancelled instead. Records the try in the task's attempts (the newest 20
-- are kept); returns the new state.
UPDATE taskq_tasks
SET state = CASE WHEN cancel_requested IS NOT NULL THEN 'cancelled' ELSE 'queued' END,
    tries = CASE WHEN cancel_requested IS NOT NULL THEN tries ELSE tries - 1 END,
    finished_at = CASE WHEN cancel_requested IS NOT NULL THEN ?3 END,
    last_error = CASE WHEN cancel_requested IS NOT NULL THEN 'cancelled while it ran: its worker gave it back' ELSE last_error END,
    expires = NULL,
    not_before = CASE WHEN ?4 > 0 AND cancel_requested IS NULL THEN ?3 + ?4 ELSE not_before END,
    attempts = json_insert(
        CASE WHEN json_array_length(attempts) >= 20 THEN json_remove(attempts, '$[0]') ELSE coalesce(attempts, '[]') END,
        '$[#]',
        json_object('n', tries, 'start', started_at, 'end', ?3,
                    'outcome', CASE WHEN cancel_requested IS NOT NULL THEN 'cancelled' WHEN ?4 > 0 THEN 'snoozed' ELSE 'released' END,
                    'error', NULL, 'worker', json(worker)))
WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
RETURNING state
