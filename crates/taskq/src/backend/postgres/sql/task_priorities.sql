-- $1 action: the priorities its queued tasks have, lowest first, one seek
-- of the ready index each (`levels`, as in task_claim.sql), and for each
-- the earliest not-before time that has come (NULL when every task of the
-- priority waits for a later one), one more seek.
WITH RECURSIVE levels (p) AS (
    (SELECT priority FROM {schema}.taskq_tasks
     WHERE action = $1 AND state = 'queued'
     ORDER BY priority LIMIT 1)
    UNION ALL
    SELECT (SELECT priority FROM {schema}.taskq_tasks
            WHERE action = $1 AND state = 'queued' AND priority > levels.p
            ORDER BY priority LIMIT 1)
    FROM levels WHERE levels.p IS NOT NULL
)
SELECT p, (SELECT not_before FROM {schema}.taskq_tasks
           WHERE action = $1 AND state = 'queued' AND priority = levels.p AND not_before <= now()
           ORDER BY not_before LIMIT 1)
FROM levels WHERE p IS NOT NULL
