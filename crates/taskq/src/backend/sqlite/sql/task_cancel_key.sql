-- ?1 action, ?2 unique key: the task that holds it and may still run,
-- through the unique index (see migration 0004).
SELECT id FROM taskq_tasks
WHERE action = ?1 AND unique_key = ?2 AND unique_key IS NOT NULL
  AND (unique_states & CASE state WHEN 'waiting' THEN 1 WHEN 'queued' THEN 2 WHEN 'running' THEN 4
                                  WHEN 'succeeded' THEN 8 WHEN 'failed' THEN 16 ELSE 32 END) <> 0
  AND state IN ('waiting', 'queued', 'running')
