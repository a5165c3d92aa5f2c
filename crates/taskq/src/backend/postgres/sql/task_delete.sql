-- Counts its changes in taskq_counts; `taskq.counted` tells the counting
-- triggers (meant for writers other than taskq) that it does.
WITH deleted AS (
    DELETE FROM {schema}.taskq_tasks
    WHERE id = $1 AND (SELECT set_config('taskq.counted', 'on', true)) = 'on'
    RETURNING action, state
), counted AS (
    INSERT INTO {schema}.taskq_counts (action, state, n)
    SELECT action, state, -count(*) FROM deleted GROUP BY action, state
)
SELECT 1 FROM deleted
