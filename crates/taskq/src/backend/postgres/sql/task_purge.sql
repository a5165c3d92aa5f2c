-- $1 state, $2 microseconds: finished at least that long ago; $3 the
-- most to delete (NULL: no limit), the longest finished first. Tasks
-- another transaction holds (a retry, another purge) are skipped, so
-- that purges of several workers take different tasks and none waits.
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
-- The condition of the partial index of finished tasks (migration 0004)
-- lets a generic plan use it, in the order of finish, which `state = $1`
-- alone (a parameter) would not. A task with dependents that have not
-- finished stays (they may read its result).
WITH doomed AS (
    SELECT id FROM {schema}.taskq_tasks
    WHERE finished_at IS NOT NULL AND state = $1
      AND finished_at <= now() - $2::bigint * interval '1 microsecond'
      AND NOT (has_dependents AND EXISTS (
            SELECT 1 FROM {schema}.taskq_dependencies AS d JOIN {schema}.taskq_tasks AS w ON w.id = d.task
            WHERE d.depends_on = taskq_tasks.id AND w.finished_at IS NULL))
    ORDER BY finished_at
    LIMIT $3::bigint
    FOR UPDATE SKIP LOCKED
), purged AS (
    DELETE FROM {schema}.taskq_tasks AS t
    USING doomed
    WHERE t.id = doomed.id
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING t.action, t.state, t.counted
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, state, -count(*) FROM purged WHERE counted GROUP BY action, state
)
SELECT 1 FROM purged
