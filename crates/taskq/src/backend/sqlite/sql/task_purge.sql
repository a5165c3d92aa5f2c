-- ?1 state, ?2 finished at or before. The state list lets SQLite use the
-- partial index of finished tasks; `state = ?1` alone, a parameter, would
-- not, and every task would be read.
DELETE FROM taskq_tasks
WHERE state IN ('failed', 'succeeded', 'cancelled') AND state = ?1 AND finished_at <= ?2
