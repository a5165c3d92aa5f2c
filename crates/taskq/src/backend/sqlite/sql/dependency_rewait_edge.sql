-- ?1, a cancelled dependent, is to wait again: its edges to dependencies
-- that may run again (queued again meanwhile) open (task_rewait.sql
-- follows).
UPDATE taskq_dependencies SET outcome = NULL
WHERE task = ?1 AND outcome IS NOT NULL
  AND depends_on IN (SELECT id FROM taskq_tasks WHERE state IN ('waiting', 'queued', 'running'))
