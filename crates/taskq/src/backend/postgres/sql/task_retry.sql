-- $1 id, $2 the notification channel.
-- A task has failed exactly when it is finished and has not succeeded (a
-- CHECK of the table); saying `state = 'failed'` instead would let the
-- planner read every failed task through the index of finished ones in
-- place of looking up the id.
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
WITH retried AS (
    UPDATE {schema}.taskq_tasks
    SET state = 'queued', tries = 0, not_before = now(), finished_at = NULL
    WHERE id = $1 AND finished_at IS NOT NULL AND state <> 'succeeded'
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING action, counted
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, 'failed', -count(*) FROM retried WHERE counted GROUP BY action
    UNION ALL
    SELECT action, 'queued', count(*) FROM retried WHERE counted GROUP BY action
)
SELECT pg_notify($2, action) FROM retried
