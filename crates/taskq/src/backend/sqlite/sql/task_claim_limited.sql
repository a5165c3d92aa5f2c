-- ?1 now, ?2 action, ?3 how many the limits admit, ?4 the worker (JSON),
-- ?5 the per-key limit (NULL: none). The claim of an action with limits
-- (see limits.rs, which counts what they admit under the write lock):
-- the first ready tasks as task_claim.sql takes them, passing over the
-- tasks whose concurrency key has ?5 running under a live lease, and
-- taking at most ?5 of a key in all. Nothing of a paused action.
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
    ), busy AS (
        SELECT concurrency_key AS key, count(*) AS n FROM taskq_tasks
        WHERE ?5 IS NOT NULL AND action = ?2 AND state = 'running' AND expires > ?1
          AND concurrency_key IS NOT NULL
        GROUP BY concurrency_key
    ), ready AS (
        SELECT id, priority, not_before, concurrency_key FROM taskq_tasks AS t
        WHERE action = ?2 AND state = 'queued' AND priority IN (SELECT p FROM levels) AND not_before <= ?1
          AND (?5 IS NULL OR t.concurrency_key IS NULL OR NOT EXISTS (
              SELECT 1 FROM busy WHERE busy.key = t.concurrency_key AND busy.n >= ?5))
        ORDER BY priority, not_before, id
        LIMIT (SELECT ?3 * CASE WHEN ?5 IS NULL THEN 1 ELSE 4 END)
    ), ranked AS (
        SELECT ready.*, row_number() OVER (
            PARTITION BY concurrency_key ORDER BY priority, not_before, id) AS rn
        FROM ready
    )
    SELECT ranked.id FROM ranked LEFT JOIN busy ON busy.key = ranked.concurrency_key
    WHERE ?5 IS NULL OR ranked.concurrency_key IS NULL OR coalesce(busy.n, 0) + ranked.rn <= ?5
    ORDER BY ranked.priority, ranked.not_before, ranked.id
    LIMIT (SELECT ?3)
)
RETURNING id, action, payload, state, not_before, tries, max_tries, timeout_us, expires, parent, last_error, created_at, finished_at, lease_token, priority, unique_key, unique_states, unique_slot, cancel_requested, started_at, worker, attempts, concurrency_key
