-- $1 one action, or NULL for all; $2 first backoff, $3 longest backoff
-- (microseconds). Expired leases go back to the queue (at once after a
-- first try, else after a backoff that doubles with each try), or fail for
-- good when their tries are used up, or end cancelled when their
-- cancellation was asked for. Each try is recorded in its task's attempts. Rows another transaction holds are
-- skipped: it is changing them anyway.
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
WITH expired AS (
    UPDATE {schema}.taskq_tasks AS t
    SET state = CASE WHEN t.cancel_requested IS NOT NULL THEN 'cancelled'
                     WHEN t.max_tries >= 0 AND t.tries >= t.max_tries THEN 'failed' ELSE 'queued' END,
        finished_at = CASE WHEN t.cancel_requested IS NOT NULL OR (t.max_tries >= 0 AND t.tries >= t.max_tries) THEN now() END,
        not_before = CASE WHEN t.cancel_requested IS NOT NULL OR (t.max_tries >= 0 AND t.tries >= t.max_tries) OR t.tries <= 1
                          THEN t.not_before
                          ELSE now() + least($3::bigint, $2::bigint << least(t.tries - 2, 20)) * interval '1 microsecond' END,
        expires = NULL,
        last_error = CASE WHEN t.cancel_requested IS NOT NULL THEN 'cancelled while it ran: ' ELSE '' END
                     || 'the lease of try ' || t.tries || ' expired before the task finished',
        attempts = {schema}.taskq_attempt(t.attempts, t.tries, t.started_at,
            CASE WHEN t.cancel_requested IS NOT NULL THEN 'cancelled' ELSE 'expired' END,
            'the lease expired before the task finished', t.worker)
    WHERE t.id = ANY (ARRAY(
        SELECT id FROM {schema}.taskq_tasks
        WHERE state = 'running' AND expires <= now() AND ($1::text IS NULL OR action = $1)
        FOR UPDATE SKIP LOCKED
    ))
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING t.action, t.state, t.counted
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, state, count(*) FROM expired WHERE counted GROUP BY action, state
)
SELECT 1 FROM expired
