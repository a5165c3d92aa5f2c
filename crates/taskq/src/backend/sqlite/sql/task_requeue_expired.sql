-- ?1 now, ?2 one action or NULL for all, ?3 first backoff, ?4 longest
-- backoff (microseconds). Expired leases go back to the queue (at once
-- after a first try, else after a backoff that doubles with each try), or
-- fail for good when their tries are used up, or end cancelled when their
-- cancellation was asked for. Records the try in the task's attempts (the
-- newest 20 are kept).
UPDATE taskq_tasks
SET state = CASE WHEN cancel_requested IS NOT NULL THEN 'cancelled'
                 WHEN max_tries >= 0 AND tries >= max_tries THEN 'failed' ELSE 'queued' END,
    finished_at = CASE WHEN cancel_requested IS NOT NULL OR (max_tries >= 0 AND tries >= max_tries) THEN ?1 ELSE NULL END,
    not_before = CASE WHEN cancel_requested IS NOT NULL OR (max_tries >= 0 AND tries >= max_tries) OR tries <= 1 THEN not_before
                      ELSE ?1 + min(?4, ?3 << min(tries - 2, 20)) END,
    expires = NULL,
    last_error = CASE WHEN cancel_requested IS NOT NULL THEN 'cancelled while it ran: ' ELSE '' END
                 || 'the lease of try ' || tries || ' expired before the task finished',
    attempts = json_insert(
        CASE WHEN json_array_length(attempts) >= 20 THEN json_remove(attempts, '$[0]') ELSE coalesce(attempts, '[]') END,
        '$[#]',
        json_object('n', tries, 'start', started_at, 'end', ?1,
                    'outcome', CASE WHEN cancel_requested IS NOT NULL THEN 'cancelled' ELSE 'expired' END,
                    'error', 'the lease expired before the task finished', 'worker', json(worker)))
WHERE state = 'running' AND expires <= ?1 AND (?2 IS NULL OR action = ?2)
