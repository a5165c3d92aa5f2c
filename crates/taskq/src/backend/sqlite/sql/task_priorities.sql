-- ?1 action: the priorities its queued tasks have, lowest first, one seek
-- of the ready index each (`levels`, as in task_count_ready.sql).
WITH RECURSIVE levels (p) AS (
    SELECT min(priority) FROM taskq_tasks WHERE action = ?1 AND state = 'queued'
    UNION ALL
    SELECT (SELECT min(priority) FROM taskq_tasks WHERE action = ?1 AND state = 'queued' AND priority > levels.p)
    FROM levels WHERE levels.p IS NOT NULL
)
SELECT p FROM levels WHERE p IS NOT NULL
