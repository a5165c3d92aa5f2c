-- $2 the notification channel; {target} the tasks to cancel: `id = $1`,
-- `action = $1 AND state = $3`, or the live task of action $1 holding the
-- unique key $3. A task that has not started ends cancelled at once; a
-- running one gets its cancellation asked for (its try then ends
-- cancelled unless it completes) and its worker hears it through a
-- notification. Returns each one's id and state after.
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
WITH old AS (
    SELECT id, state FROM {schema}.taskq_tasks
    WHERE {target} AND state IN ('waiting', 'queued', 'running')
    FOR UPDATE
), cancelled AS (
    UPDATE {schema}.taskq_tasks AS t
    SET state = CASE WHEN old.state = 'running' THEN t.state ELSE 'cancelled' END,
        finished_at = CASE WHEN old.state = 'running' THEN NULL ELSE now() END,
        last_error = CASE WHEN old.state = 'running' THEN t.last_error ELSE 'cancelled before it ran' END,
        cancel_requested = CASE WHEN old.state = 'running' THEN coalesce(t.cancel_requested, now()) END
    FROM old
    WHERE t.id = old.id
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING t.id, t.action, t.state, old.state AS was, t.counted
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, was, -count(*) FROM cancelled WHERE counted AND state = 'cancelled' GROUP BY action, was
    UNION ALL
    SELECT action, 'cancelled', count(*) FROM cancelled WHERE counted AND state = 'cancelled' GROUP BY action
)
SELECT id, state, CASE WHEN state = 'running' THEN pg_notify($2, E'\x01cancel ' || id) END FROM cancelled
