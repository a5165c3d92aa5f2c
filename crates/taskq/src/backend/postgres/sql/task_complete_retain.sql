-- $1 id, $2 lease token, $3 its result (JSON) or NULL. Records the try in
-- the task's attempts.
-- `expires IS NOT NULL` means running (see task_complete_many.sql).
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
WITH completed AS (
    UPDATE {schema}.taskq_tasks
    SET state = 'succeeded', expires = NULL, finished_at = now(), result = $3::bytea,
        attempts = {schema}.taskq_attempt(attempts, tries, started_at, 'succeeded', NULL, worker)
    WHERE id = $1 AND lease_token = $2 AND expires IS NOT NULL
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING action, counted
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, 'succeeded', count(*) FROM completed WHERE counted GROUP BY action
)
SELECT 1 FROM completed
