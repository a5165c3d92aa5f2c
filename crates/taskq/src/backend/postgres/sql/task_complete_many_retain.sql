-- $1 ids, $2 their lease tokens. Returns the ids whose lease still held.
-- Records each try in its task's attempts.
-- `expires IS NOT NULL` means running (see task_complete_many.sql).
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
WITH completed AS (
    UPDATE {schema}.taskq_tasks AS t
    SET state = 'succeeded', expires = NULL, finished_at = now(),
        attempts = {schema}.taskq_attempt(t.attempts, t.tries, t.started_at, 'succeeded', NULL, t.worker)
    WHERE t.id = ANY ($1::bigint[]) AND t.expires IS NOT NULL
      AND (t.id, t.lease_token) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING t.id, t.action, t.counted
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, 'succeeded', count(*) FROM completed WHERE counted GROUP BY action
)
SELECT id FROM completed
