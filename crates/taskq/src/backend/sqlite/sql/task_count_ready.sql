-- ?1 action, ?2 now: what a claim could take, including expired leases;
-- none while the action is paused. All queued tasks (a kept count and
-- those above the mark, see migration 0003) less those not yet due, plus
-- expired leases with tries left (one that expired on its last try fails
-- instead of running). The tasks not yet due are counted one priority at
-- a time (`levels`, one seek each), each a range of the ready index:
-- short unless many tasks wait for a time. NOT INDEXED: the tasks above
-- the mark are found by id, never through the index of all queued tasks.
WITH RECURSIVE levels (p) AS (
    SELECT min(priority) FROM taskq_tasks WHERE action = ?1 AND state = 'queued'
    UNION ALL
    SELECT (SELECT min(priority) FROM taskq_tasks WHERE action = ?1 AND state = 'queued' AND priority > levels.p)
    FROM levels WHERE levels.p IS NOT NULL
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM taskq_paused WHERE action = ?1) THEN 0 ELSE
    coalesce((SELECT n FROM taskq_counts WHERE action = ?1 AND state = 'queued'), 0)
  + (SELECT count(*) FROM taskq_tasks NOT INDEXED
     WHERE id > (SELECT counted_to FROM taskq_count_mark) AND action = ?1 AND state = 'queued')
  - (SELECT coalesce(sum((SELECT count(*) FROM taskq_tasks
                          WHERE action = ?1 AND state = 'queued' AND priority = levels.p AND not_before > ?2)), 0)
     FROM levels WHERE levels.p IS NOT NULL)
  + (SELECT count(*) FROM taskq_tasks WHERE state = 'running' AND expires <= ?2 AND action = ?1
     AND (max_tries = -1 OR tries < max_tries))
END
