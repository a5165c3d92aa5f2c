-- The links of ?1: its dependencies (kind 0) and its dependents (kind 1),
-- each with the other task's action and state if it still exists, and the
-- edge's outcome.
SELECT 0, d.depends_on, t.action, t.state, d.outcome
FROM taskq_dependencies AS d LEFT JOIN taskq_tasks AS t ON t.id = d.depends_on
WHERE d.task = ?1
UNION ALL
SELECT 1, d.task, t.action, t.state, d.outcome
FROM taskq_dependencies AS d LEFT JOIN taskq_tasks AS t ON t.id = d.task
WHERE d.depends_on = ?1
ORDER BY 1, 2
