-- ?1 action, ?2 unique key, ?3 the start of its period window or NULL:
-- the task that holds the key, through either unique index (see migration
-- 0004).
SELECT id FROM taskq_tasks
WHERE action = ?1 AND unique_key = ?2 AND unique_key IS NOT NULL
  AND (unique_states & CASE state WHEN 'waiting' THEN 1 WHEN 'queued' THEN 2 WHEN 'running' THEN 4
                                  WHEN 'succeeded' THEN 8 WHEN 'failed' THEN 16 ELSE 32 END) <> 0
UNION ALL
SELECT id FROM taskq_tasks
WHERE action = ?1 AND unique_key = ?2 AND unique_slot = ?3 AND unique_slot IS NOT NULL
LIMIT 1
