-- ?1 state, ?2 finished at or before.
DELETE FROM taskq_tasks WHERE state = ?1 AND finished_at <= ?2
