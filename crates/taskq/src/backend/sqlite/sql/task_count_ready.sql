-- ?1 action, ?2 now: what a claim could take, including expired leases.
-- All queued tasks (a kept count) less those not yet due, plus expired
-- leases: both index ranges are short unless many tasks wait for a time.
SELECT
    coalesce((SELECT n FROM taskq_counts WHERE action = ?1 AND state = 'queued'), 0)
  - (SELECT count(*) FROM taskq_tasks WHERE action = ?1 AND state = 'queued' AND not_before > ?2)
  + (SELECT count(*) FROM taskq_tasks WHERE state = 'running' AND expires <= ?2 AND action = ?1)
