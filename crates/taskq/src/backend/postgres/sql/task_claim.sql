-- $1 action, $2 limit, $3 the worker (JSON). Nothing of a paused action,
-- nor of a limited one: task_claim_limited.sql claims those.
-- The first ready tasks by priority, then not-before, then id: the order
-- of the ready index, read one priority at a time (each a range of due
-- tasks), so that tasks waiting for a later time are never read, however
-- many there are; `levels` finds the priorities in use, one index seek
-- each. SKIP LOCKED: concurrent claimers take different rows
-- instead of waiting for each other. The ids are picked first (an array, so
-- the update finds its rows through the primary key with any plan, generic
-- or custom). The commit does not wait for the disk (synchronous_commit off
-- for this transaction only): a claim lost in a server crash only means the
-- task runs again. Tokens grow by a random step, so a claim redone after
-- such a loss almost surely (but for one chance in four billion) gets
-- another token than the lost one, and a worker still holding the lost
-- token stays fenced out.
-- Tallies the counted tasks that leave the queue in taskq_tallies (running
-- tasks are counted live, see migration 0003); `taskq.tallied` tells the
-- counting triggers (meant for writers other than taskq) that it does.
WITH RECURSIVE levels (p) AS (
    (SELECT priority FROM {schema}.taskq_tasks
     WHERE action = $1 AND state = 'queued'
       AND NOT EXISTS (SELECT 1 FROM {schema}.taskq_paused WHERE action = $1)
       AND NOT EXISTS (SELECT 1 FROM {schema}.taskq_limits WHERE action = $1)
     ORDER BY priority LIMIT 1)
    UNION ALL
    SELECT (SELECT priority FROM {schema}.taskq_tasks
            WHERE action = $1 AND state = 'queued' AND priority > levels.p
            ORDER BY priority LIMIT 1)
    FROM levels WHERE levels.p IS NOT NULL
), claimed AS (
    UPDATE {schema}.taskq_tasks AS t
    SET state = 'running', tries = t.tries + 1,
        lease_token = t.lease_token + 1 + floor(random() * 4294967296)::bigint,
        expires = now() + t.timeout_us * interval '1 microsecond',
        started_at = now(), worker = $3::text
    WHERE t.id = ANY (ARRAY(
            SELECT ready.id FROM levels CROSS JOIN LATERAL (
                SELECT id, not_before FROM {schema}.taskq_tasks
                WHERE action = $1 AND state = 'queued' AND priority = levels.p AND not_before <= now()
                ORDER BY not_before, id
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            ) AS ready
            WHERE levels.p IS NOT NULL
            ORDER BY levels.p, ready.not_before, ready.id
            LIMIT $2
        ))
      AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING t.id, t.action, t.payload, t.state, t.not_before, t.tries, t.max_tries, t.timeout_us, t.expires, t.parent, t.last_error, t.created_at, t.finished_at, t.lease_token, t.priority, t.unique_key, t.unique_states, t.unique_slot, t.cancel_requested, t.started_at, t.worker, t.attempts, t.concurrency_key, t.counted
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, 'queued', -count(*) FROM claimed WHERE counted GROUP BY action
)
SELECT * FROM claimed
