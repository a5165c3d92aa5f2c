-- The tallies per action and state, and what is counted live (see
-- migration 0003): the uncounted tasks that are not running, and the
-- running tasks, through the lease index.
SELECT action, state, sum(n)::bigint
FROM (
    SELECT action, state, n FROM {schema}.taskq_tallies
    UNION ALL
    SELECT action, state, count(*) FROM {schema}.taskq_tasks
    WHERE NOT counted AND state <> 'running'
    GROUP BY action, state
    UNION ALL
    SELECT action, 'running', count(*) FROM {schema}.taskq_tasks
    WHERE state = 'running'
    GROUP BY action
) AS counts
GROUP BY action, state
HAVING sum(n) > 0
ORDER BY action COLLATE "C"
