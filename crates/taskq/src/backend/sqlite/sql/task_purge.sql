-- ?1 state, ?2 finished at or before, ?3 the most to delete (negative:
-- no limit), the longest finished first. The condition of the partial
-- index of finished tasks (migration 0004) lets SQLite use it, in the
-- order of finish; `state = ?1` alone, a parameter, would not, and every
-- task would be read. A task with dependents that have not finished stays
-- (they may read its result).
DELETE FROM taskq_tasks
WHERE id IN (
    SELECT p.id FROM taskq_tasks AS p
    WHERE p.finished_at IS NOT NULL AND p.state = ?1 AND p.finished_at <= ?2
      AND NOT (p.has_dependents AND EXISTS (
            SELECT 1 FROM taskq_dependencies AS d JOIN taskq_tasks AS w ON w.id = d.task
            WHERE d.depends_on = p.id AND w.finished_at IS NULL))
    ORDER BY p.finished_at
    LIMIT ?3
)
