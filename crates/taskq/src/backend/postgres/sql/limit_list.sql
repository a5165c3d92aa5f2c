-- Every limited action: its limits, its running tasks under a live lease
-- (the slots taken), the whole tokens in its bucket now, and how many of
-- its concurrency keys are at the per-key limit.
SELECT l.action, l.concurrency, l.rate_count, l.rate_period_us, l.per_key,
       floor(least(l.rate_count::double precision,
                   l.tokens + greatest(0, extract(epoch FROM now() - l.refilled_at)) * 1e6 * l.rate_count / l.rate_period_us))::bigint,
       (SELECT count(*) FROM {schema}.taskq_tasks
        WHERE action = l.action AND state = 'running' AND expires > now()),
       CASE WHEN l.per_key IS NULL THEN 0 ELSE (
           SELECT count(*) FROM (
               SELECT 1 FROM {schema}.taskq_tasks
               WHERE action = l.action AND state = 'running' AND expires > now() AND concurrency_key IS NOT NULL
               GROUP BY concurrency_key HAVING count(*) >= l.per_key) AS busy)
       END,
       l.updated_at
FROM {schema}.taskq_limits AS l
ORDER BY l.action
