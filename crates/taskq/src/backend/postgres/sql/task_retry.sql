-- $1 id, $2 the notification channel.
-- Counts its changes to counted tasks in taskq_counts; `taskq.counted`
-- tells the counting triggers (meant for writers other than taskq) that it
-- does. Uncounted tasks are counted live (see migration 0003).
WITH retried AS (
    UPDATE {schema}.taskq_tasks
    SET state = 'queued', tries = 0, not_before = now(), finished_at = NULL
    WHERE id = $1 AND state = 'failed'
      AND (SELECT set_config('taskq.counted', 'on', true)) = 'on'
    RETURNING action, counted
), counted AS (
    INSERT INTO {schema}.taskq_counts (action, state, n)
    SELECT action, 'failed', -count(*) FROM retried WHERE counted GROUP BY action
    UNION ALL
    SELECT action, 'queued', count(*) FROM retried WHERE counted GROUP BY action
)
SELECT pg_notify($2, action) FROM retried
