-- $1 action: the priorities its queued tasks have, lowest first, one seek
-- of the ready index each (`levels`, as in task_claim.sql).
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
SELECT p FROM levels WHERE p IS NOT NULL
