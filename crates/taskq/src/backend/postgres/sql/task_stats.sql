-- The kept counts per action and state (see migration 0002) and the
-- uncounted tasks, counted live (see migration 0003).
SELECT action, state, sum(n)::bigint
FROM (
    SELECT action, state, n FROM {schema}.taskq_counts
    UNION ALL
    SELECT action, state, count(*) FROM {schema}.taskq_tasks WHERE NOT counted GROUP BY action, state
) AS counts
GROUP BY action, state
HAVING sum(n) > 0
ORDER BY action COLLATE "C"
