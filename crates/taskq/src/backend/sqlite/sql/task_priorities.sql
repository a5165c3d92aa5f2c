-- ?1 action, ?2 now: the priorities its queued tasks have, lowest first,
-- one seek of the ready index each (`levels`, as in task_count_ready.sql),
-- and for each the earliest not-before time that has come (NULL when every
-- task of the priority waits for a later one), one more seek.
WITH RECURSIVE levels (p) AS (
    SELECT min(priority) FROM taskq_tasks WHERE action = ?1 AND state = 'queued'
    UNION ALL
    SELECT (SELECT min(priority) FROM taskq_tasks WHERE action = ?1 AND state = 'queued' AND priority > levels.p)
    FROM levels WHERE levels.p IS NOT NULL
)
SELECT p, (SELECT min(not_before) FROM taskq_tasks
           WHERE action = ?1 AND state = 'queued' AND priority = levels.p AND not_before <= ?2)
FROM levels WHERE p IS NOT NULL
