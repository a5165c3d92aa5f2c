-- ?2 now; {target} the tasks to cancel: `id = ?1`, or `action = ?1 AND
-- state = ?3`. A task that has not started ends cancelled at once; a
-- running one gets its cancellation asked for (its try then ends
-- cancelled unless it completes). Returns each one's id and state after.
UPDATE taskq_tasks
SET state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
    finished_at = CASE WHEN state = 'running' THEN NULL ELSE ?2 END,
    last_error = CASE WHEN state = 'running' THEN last_error ELSE 'cancelled before it ran' END,
    cancel_requested = CASE WHEN state = 'running' THEN coalesce(cancel_requested, ?2) END
WHERE {target} AND state IN ('waiting', 'queued', 'running')
RETURNING id, state
