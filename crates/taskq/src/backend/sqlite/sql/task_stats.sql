-- The kept counts per action and state, plus the tasks above the mark,
-- counted live (see migration 0003).
SELECT action, state, sum(n) FROM (
    SELECT action, state, n FROM taskq_counts
    UNION ALL
    SELECT action, state, count(*) FROM taskq_tasks NOT INDEXED
    WHERE id > (SELECT counted_to FROM taskq_count_mark)
    GROUP BY action, state
)
GROUP BY action, state
HAVING sum(n) > 0
ORDER BY action
