-- Counts its changes to counted tasks in taskq_counts; `taskq.counted`
-- tells the counting triggers (meant for writers other than taskq) that it
-- does. Uncounted tasks are counted live (see migration 0003).
WITH deleted AS (
    DELETE FROM {schema}.taskq_tasks
    WHERE id = $1 AND (SELECT set_config('taskq.counted', 'on', true)) = 'on'
    RETURNING action, state, counted
), counted AS (
    INSERT INTO {schema}.taskq_counts (action, state, n)
    SELECT action, state, -count(*) FROM deleted WHERE counted GROUP BY action, state
)
SELECT 1 FROM deleted
