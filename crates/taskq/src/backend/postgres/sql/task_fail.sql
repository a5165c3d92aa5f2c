-- $1 id, $2 lease token, $3 error, $4 retry delay in microseconds, or NULL
-- to end the task, $5 the state it ends in then ('failed' or 'cancelled').
-- A task whose cancellation was asked for ends cancelled whatever the
-- caller asked. Records the try in the task's attempts; returns the new
-- state.
-- `expires IS NOT NULL` means running (see task_complete_many.sql).
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
WITH failed AS (
    UPDATE {schema}.taskq_tasks
    SET state = CASE WHEN cancel_requested IS NOT NULL THEN 'cancelled' WHEN $4::bigint IS NULL THEN $5::text ELSE 'queued' END,
        not_before = CASE WHEN $4::bigint IS NULL OR cancel_requested IS NOT NULL THEN not_before
                          ELSE now() + $4::bigint * interval '1 microsecond' END,
        finished_at = CASE WHEN $4::bigint IS NULL OR cancel_requested IS NOT NULL THEN now() END,
        expires = NULL,
        last_error = $3,
        attempts = {schema}.taskq_attempt(attempts, tries, started_at,
            CASE WHEN cancel_requested IS NOT NULL OR $5::text = 'cancelled' THEN 'cancelled'
                 WHEN $4::bigint IS NULL THEN 'failed' ELSE 'retried' END,
            $3, worker)
    WHERE id = $1 AND lease_token = $2 AND expires IS NOT NULL
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING action, state, counted
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, state, count(*) FROM failed WHERE counted GROUP BY action, state
)
SELECT state FROM failed
