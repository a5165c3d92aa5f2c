-- $1 id, $2 lease token, $3 error, $4 retry delay in microseconds, or NULL
-- to fail for good.
-- Counts its changes to counted tasks in taskq_counts; `taskq.counted`
-- tells the counting triggers (meant for writers other than taskq) that it
-- does. Uncounted tasks are counted live (see migration 0003).
WITH failed AS (
    UPDATE {schema}.taskq_tasks
    SET state = CASE WHEN $4::bigint IS NULL THEN 'failed' ELSE 'queued' END,
        not_before = CASE WHEN $4::bigint IS NULL THEN not_before ELSE now() + $4::bigint * interval '1 microsecond' END,
        finished_at = CASE WHEN $4::bigint IS NULL THEN now() END,
        expires = NULL,
        last_error = $3
    WHERE id = $1 AND lease_token = $2 AND state = 'running'
      AND (SELECT set_config('taskq.counted', 'on', true)) = 'on'
    RETURNING action, state, counted
), counted AS (
    INSERT INTO {schema}.taskq_counts (action, state, n)
    SELECT action, state, count(*) FROM failed WHERE counted GROUP BY action, state
    UNION ALL
    SELECT action, 'running', -count(*) FROM failed WHERE counted GROUP BY action
)
SELECT 1 FROM failed
