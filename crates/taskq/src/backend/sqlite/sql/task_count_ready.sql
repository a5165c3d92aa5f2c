-- ?1 action, ?2 now: what a claim could take, including expired leases.
SELECT
    (SELECT count(*) FROM taskq_tasks WHERE action = ?1 AND state = 'queued' AND not_before <= ?2)
  + (SELECT count(*) FROM taskq_tasks WHERE state = 'running' AND expires <= ?2 AND action = ?1)
