-- The kept counts per action and state (see migration 0002).
SELECT action, state, sum(n)::bigint
FROM {schema}.taskq_counts
GROUP BY action, state
HAVING sum(n) > 0
ORDER BY action COLLATE "C"
