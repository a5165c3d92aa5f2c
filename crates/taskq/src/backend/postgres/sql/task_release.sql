-- $1 id, $2 lease token, $3 delay in microseconds, $4 the notification
-- channel. A release without delay keeps the task's place in line and
-- wakes listeners.
-- Counts its changes to counted tasks in taskq_counts; `taskq.counted`
-- tells the counting triggers (meant for writers other than taskq) that it
-- does. Uncounted tasks are counted live (see migration 0003).
WITH released AS (
    UPDATE {schema}.taskq_tasks
    SET state = 'queued', tries = tries - 1, expires = NULL,
        not_before = CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 microsecond' ELSE not_before END
    WHERE id = $1 AND lease_token = $2 AND state = 'running'
      AND (SELECT set_config('taskq.counted', 'on', true)) = 'on'
    RETURNING action, not_before, counted
), counted AS (
    INSERT INTO {schema}.taskq_counts (action, state, n)
    SELECT action, 'running', -count(*) FROM released WHERE counted GROUP BY action
    UNION ALL
    SELECT action, 'queued', count(*) FROM released WHERE counted GROUP BY action
)
SELECT CASE WHEN not_before <= now() THEN pg_notify($4, action) END FROM released
