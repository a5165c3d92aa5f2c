-- The cancelled dependents of ?1 that may wait for it again: those that
-- run anyway, and those with no other dependency that failed or was
-- cancelled and still is (one queued again meanwhile waits again too).
SELECT d.task FROM taskq_dependencies AS d JOIN taskq_tasks AS t ON t.id = d.task
WHERE d.depends_on = ?1 AND t.state = 'cancelled'
  AND (t.run_if_dependencies_fail OR NOT EXISTS (
        SELECT 1 FROM taskq_dependencies AS o LEFT JOIN taskq_tasks AS other ON other.id = o.depends_on
        WHERE o.task = d.task AND o.depends_on <> ?1 AND o.outcome IN ('failed', 'cancelled')
          AND (other.id IS NULL OR other.state IN ('failed', 'cancelled'))))
ORDER BY d.task
