-- ?1, a cancelled task, waits again for every dependency whose edge is
-- open, with its tries reset.
UPDATE taskq_tasks
SET state = 'waiting', tries = 0, finished_at = NULL, cancel_requested = NULL,
    waiting_on = (SELECT count(*) FROM taskq_dependencies WHERE task = ?1 AND outcome IS NULL)
WHERE id = ?1 AND state = 'cancelled'
