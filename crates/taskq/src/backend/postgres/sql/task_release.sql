-- $1 id, $2 lease token, $3 delay in microseconds, $4 the notification
-- channel. A release without delay keeps the task's place in line and
-- wakes listeners.
-- `expires IS NOT NULL` means running (see task_complete_many.sql).
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
WITH released AS (
    UPDATE {schema}.taskq_tasks
    SET state = 'queued', tries = tries - 1, expires = NULL,
        not_before = CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 microsecond' ELSE not_before END
    WHERE id = $1 AND lease_token = $2 AND expires IS NOT NULL
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING action, not_before, counted
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, 'queued', count(*) FROM released WHERE counted GROUP BY action
)
SELECT CASE WHEN not_before <= now() THEN pg_notify($4, action) END FROM released
