-- ?1 action, ?2 now. Its limits, its bucket (tokens as of refilled_at),
-- and its running tasks under a live lease; no row without limits.
SELECT concurrency, rate_count, rate_period_us, per_key, tokens, refilled_at,
       (SELECT count(*) FROM taskq_tasks
        WHERE action = ?1 AND state = 'running' AND expires > ?2)
FROM taskq_limits WHERE action = ?1
