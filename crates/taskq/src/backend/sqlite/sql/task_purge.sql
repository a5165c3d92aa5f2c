-- ?1 state, ?2 finished at or before, ?3 the most to delete (negative:
-- no limit), the longest finished first. The condition of the partial
-- index of finished tasks (migration 0004) lets SQLite use it, in the
-- order of finish; `state = ?1` alone, a parameter, would not, and every
-- task would be read.
DELETE FROM taskq_tasks
WHERE id IN (
    SELECT id FROM taskq_tasks
    WHERE finished_at IS NOT NULL AND state = ?1 AND finished_at <= ?2
    ORDER BY finished_at
    LIMIT ?3
)
