-- ?1 now. Every limited action: its limits, its bucket (tokens as of
-- refilled_at), its running tasks under a live lease (the slots taken),
-- and how many of its concurrency keys are at the per-key limit.
SELECT l.action, l.concurrency, l.rate_count, l.rate_period_us, l.per_key, l.tokens, l.refilled_at,
       (SELECT count(*) FROM taskq_tasks
        WHERE action = l.action AND state = 'running' AND expires > ?1),
       CASE WHEN l.per_key IS NULL THEN 0 ELSE (
           SELECT count(*) FROM (
               SELECT 1 FROM taskq_tasks
               WHERE action = l.action AND state = 'running' AND expires > ?1 AND concurrency_key IS NOT NULL
               GROUP BY concurrency_key HAVING count(*) >= l.per_key))
       END,
       l.updated_at
FROM taskq_limits AS l
ORDER BY l.action
