-- Whether a new task of ?1 due at ?2 must wait its turn: another is ready
-- (queued and due, or running under an expired lease), or the action is
-- paused, or limited (a limited claim decides whether it may run).
SELECT EXISTS (
    SELECT 1 FROM taskq_tasks WHERE action = ?1 AND state = 'queued' AND not_before <= ?2
) OR EXISTS (
    SELECT 1 FROM taskq_tasks WHERE action = ?1 AND state = 'running' AND expires <= ?2
) OR EXISTS (
    SELECT 1 FROM taskq_paused WHERE action = ?1
) OR EXISTS (
    SELECT 1 FROM taskq_limits WHERE action = ?1
)
