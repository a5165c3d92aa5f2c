-- $1 id, $2 lease token.
-- Counts its changes to counted tasks in taskq_counts; `taskq.counted`
-- tells the counting triggers (meant for writers other than taskq) that it
-- does. Uncounted tasks are counted live (see migration 0003).
WITH completed AS (
    UPDATE {schema}.taskq_tasks
    SET state = 'succeeded', expires = NULL, finished_at = now()
    WHERE id = $1 AND lease_token = $2 AND state = 'running'
      AND (SELECT set_config('taskq.counted', 'on', true)) = 'on'
    RETURNING action, counted
), counted AS (
    INSERT INTO {schema}.taskq_counts (action, state, n)
    SELECT action, 'running', -count(*) FROM completed WHERE counted GROUP BY action
    UNION ALL
    SELECT action, 'succeeded', count(*) FROM completed WHERE counted GROUP BY action
)
SELECT 1 FROM completed
