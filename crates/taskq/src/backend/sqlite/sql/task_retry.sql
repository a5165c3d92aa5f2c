-- ?1 id, ?2 now, ?3 what to do with its unique key (0 keep, 1 replace
-- with ?4, 2 clear). A failed or cancelled task is queued again with its
-- tries reset: waiting if some of its dependencies may still run, else
-- queued. Fails with a unique constraint error when another task
-- holds the key it would count in again.
UPDATE taskq_tasks
SET state = CASE WHEN dependencies > 0 AND EXISTS (SELECT 1 FROM taskq_dependencies WHERE task = ?1 AND outcome IS NULL)
                 THEN 'waiting' ELSE 'queued' END,
    waiting_on = CASE WHEN dependencies > 0
                      THEN (SELECT count(*) FROM taskq_dependencies WHERE task = ?1 AND outcome IS NULL) ELSE 0 END,
    tries = 0, not_before = ?2, finished_at = NULL, cancel_requested = NULL,
    unique_key = CASE ?3 WHEN 0 THEN unique_key WHEN 1 THEN ?4 END,
    unique_states = CASE ?3 WHEN 1 THEN CASE WHEN unique_key IS NULL THEN 7 ELSE unique_states END ELSE unique_states END,
    unique_slot = CASE ?3 WHEN 2 THEN NULL ELSE unique_slot END
WHERE id = ?1 AND state IN ('failed', 'cancelled')
RETURNING action, unique_key
