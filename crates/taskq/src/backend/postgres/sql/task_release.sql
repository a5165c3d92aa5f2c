-- $1 id, $2 lease token, $3 delay in microseconds, $4 the notification
-- channel. A release without delay keeps the task's place in line and
-- wakes listeners. A task whose cancellation was asked for ends cancelled
-- instead. Records the try in the task's attempts; returns the new state.
-- `expires IS NOT NULL` means running (see task_complete_many.sql).
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
WITH released AS (
    UPDATE {schema}.taskq_tasks
    SET state = CASE WHEN cancel_requested IS NOT NULL THEN 'cancelled' ELSE 'queued' END,
        tries = CASE WHEN cancel_requested IS NOT NULL THEN tries ELSE tries - 1 END,
        finished_at = CASE WHEN cancel_requested IS NOT NULL THEN now() END,
        last_error = CASE WHEN cancel_requested IS NOT NULL THEN 'cancelled while it ran: its worker gave it back' ELSE last_error END,
        expires = NULL,
        not_before = CASE WHEN $3::bigint > 0 AND cancel_requested IS NULL THEN now() + $3::bigint * interval '1 microsecond' ELSE not_before END,
        attempts = {schema}.taskq_attempt(attempts, tries, started_at,
            CASE WHEN cancel_requested IS NOT NULL THEN 'cancelled' WHEN $3::bigint > 0 THEN 'snoozed' ELSE 'released' END,
            NULL, worker)
    WHERE id = $1 AND lease_token = $2 AND expires IS NOT NULL
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING action, state, not_before, counted
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, state, count(*) FROM released WHERE counted GROUP BY action, state
)
SELECT state, CASE WHEN state = 'queued' AND not_before <= now() THEN pg_notify($4, action) END FROM released
