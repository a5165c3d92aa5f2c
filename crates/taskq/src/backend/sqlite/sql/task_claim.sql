-- ?1 now, ?2 action, ?3 limit, ?4 the worker (JSON). Nothing of a paused
-- action. The first ready tasks by priority, then not-before, then id:
-- the order of the ready index, read one priority at a time (each a range
-- of due tasks), so that tasks waiting for a later time are never read,
-- however many there are. `levels` finds the priorities in use, one seek
-- each. The limit is a subquery: a bound LIMIT would make SQLite prepare
-- the statement again at every run (its plan is made for the value).
UPDATE taskq_tasks
SET state = 'running', tries = tries + 1, lease_token = lease_token + 1, expires = ?1 + timeout_us,
    started_at = ?1, worker = ?4
WHERE id IN (
    WITH RECURSIVE levels (p) AS (
        SELECT min(priority) FROM taskq_tasks
        WHERE action = ?2 AND state = 'queued'
          AND NOT EXISTS (SELECT 1 FROM taskq_paused WHERE action = ?2)
        UNION ALL
        SELECT (SELECT min(priority) FROM taskq_tasks WHERE action = ?2 AND state = 'queued' AND priority > levels.p)
        FROM levels WHERE levels.p IS NOT NULL
    )
    SELECT id FROM taskq_tasks
    WHERE action = ?2 AND state = 'queued' AND priority IN (SELECT p FROM levels) AND not_before <= ?1
    ORDER BY priority, not_before, id
    LIMIT (SELECT ?3)
)
RETURNING id, action, payload, state, not_before, tries, max_tries, timeout_us, expires, parent, last_error, created_at, finished_at, lease_token, priority, unique_key, unique_states, unique_slot, cancel_requested, started_at, worker, attempts, concurrency_key
