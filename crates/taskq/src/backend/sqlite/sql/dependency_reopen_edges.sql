-- The edges from ?1 to its waiting dependents open again (see
-- dependency_reopen_waiting.sql).
UPDATE taskq_dependencies SET outcome = NULL
WHERE depends_on = ?1 AND outcome IS NOT NULL
  AND task IN (SELECT id FROM taskq_tasks WHERE state = 'waiting')
