-- $1 id, $2 the notification channel, $3 what to do with its unique key
-- (0 keep, 1 replace with $4, 2 clear). A failed or cancelled task is
-- queued again with its tries reset (waiting, if some of its dependencies
-- may still run). Fails with a unique violation when
-- another task holds the key it would count in again.
-- The states are named, not implied by a finish time: the condition of the
-- index of finished tasks (`finished_at IS NOT NULL`) would let the
-- planner read every finished task through it in place of looking up the
-- id.
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
WITH old AS (
    SELECT id, state FROM {schema}.taskq_tasks
    WHERE id = $1 AND state IN ('failed', 'cancelled')
    FOR UPDATE
), retried AS (
    UPDATE {schema}.taskq_tasks AS t
    SET state = CASE WHEN t.dependencies > 0 AND EXISTS (
                         SELECT 1 FROM {schema}.taskq_dependencies WHERE task = $1 AND outcome IS NULL)
                     THEN 'waiting' ELSE 'queued' END,
        waiting_on = CASE WHEN t.dependencies > 0
                          THEN (SELECT count(*) FROM {schema}.taskq_dependencies WHERE task = $1 AND outcome IS NULL)
                          ELSE 0 END,
        tries = 0, not_before = now(), finished_at = NULL, cancel_requested = NULL,
        unique_key = CASE $3::integer WHEN 0 THEN t.unique_key WHEN 1 THEN $4::text END,
        unique_states = CASE WHEN $3::integer = 1 AND t.unique_key IS NULL THEN 7::smallint ELSE t.unique_states END,
        unique_slot = CASE WHEN $3::integer = 2 THEN NULL ELSE t.unique_slot END
    FROM old
    WHERE t.id = old.id
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING t.action, t.unique_key, t.state, old.state AS was, t.counted
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, was, -count(*) FROM retried WHERE counted GROUP BY action, was
    UNION ALL
    SELECT action, state, count(*) FROM retried WHERE counted GROUP BY action, state
)
SELECT action, unique_key, pg_notify($2, action) FROM retried
