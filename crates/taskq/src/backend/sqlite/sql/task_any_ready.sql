-- Whether any task of ?1 is ready at ?2: queued and due, or running under
-- an expired lease.
SELECT EXISTS (
    SELECT 1 FROM taskq_tasks WHERE action = ?1 AND state = 'queued' AND not_before <= ?2
) OR EXISTS (
    SELECT 1 FROM taskq_tasks WHERE action = ?1 AND state = 'running' AND expires <= ?2
)
