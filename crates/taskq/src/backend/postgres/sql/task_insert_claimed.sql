-- One task due now, without a unique key: $1 action, $2 payload, $3 max
-- tries, $4 timeout (microseconds), $5 parent, $6 priority, $7 the worker
-- (JSON) that claims it. Inserted already claimed (tries 1, a new
-- lease token, a lease ending its timeout from now) when no other task of
-- the action is ready, queued and due or running under an expired lease,
-- and the action is neither paused nor limited (a limited claim decides
-- whether a task of it may run);
-- queued otherwise. Returns the task either way.
-- A queued one is tallied in taskq_tallies (a running one is counted live,
-- see migration 0003); `taskq.tallied` tells the counting triggers (meant
-- for writers other than taskq) that it is. The state is decided first,
-- and the task is inserted from its row, so the setting is in place before
-- the task's row exists.
WITH decided AS (
    SELECT $1::text AS action,
           CASE WHEN EXISTS (
                    SELECT 1 FROM {schema}.taskq_tasks
                    WHERE action = $1 AND state = 'queued' AND not_before <= now()
                ) OR EXISTS (
                    SELECT 1 FROM {schema}.taskq_tasks
                    WHERE action = $1 AND state = 'running' AND expires <= now()
                ) OR EXISTS (
                    SELECT 1 FROM {schema}.taskq_paused WHERE action = $1
                ) OR EXISTS (
                    SELECT 1 FROM {schema}.taskq_limits WHERE action = $1
                ) THEN 'queued' ELSE 'running' END AS state
    WHERE (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
), tallied AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, state, 1 FROM decided WHERE state = 'queued'
)
INSERT INTO {schema}.taskq_tasks AS t (action, payload, state, not_before, tries, max_tries, timeout_us, lease_token, expires, parent, priority, started_at, worker)
SELECT
    action, $2::bytea, state, now(),
    CASE WHEN state = 'running' THEN 1 ELSE 0 END,
    $3::integer, $4::bigint,
    CASE WHEN state = 'running' THEN 1 + floor(random() * 4294967296)::bigint ELSE 0 END,
    CASE WHEN state = 'running' THEN now() + $4::bigint * interval '1 microsecond' END,
    $5::bigint, $6::smallint,
    CASE WHEN state = 'running' THEN now() END,
    CASE WHEN state = 'running' THEN $7::text END
FROM decided
RETURNING t.id, t.action, t.payload, t.state, t.not_before, t.tries, t.max_tries, t.timeout_us, t.expires, t.parent, t.last_error, t.created_at, t.finished_at, t.lease_token, t.priority, t.unique_key, t.unique_states, t.unique_slot, t.cancel_requested, t.started_at, t.worker, t.attempts, t.concurrency_key
