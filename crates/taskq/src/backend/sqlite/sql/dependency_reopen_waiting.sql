-- ?1 was queued again: each waiting dependent whose edge to it had closed
-- (it ran anyway after ?1 failed) waits for it again. The edges open in
-- dependency_reopen_edges.sql, right after.
UPDATE taskq_tasks SET waiting_on = waiting_on + 1
WHERE state = 'waiting'
  AND id IN (SELECT task FROM taskq_dependencies WHERE depends_on = ?1 AND outcome IS NOT NULL)
