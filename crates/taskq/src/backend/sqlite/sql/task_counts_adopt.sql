-- Counts the tasks above the mark into taskq_counts (see migration 0003).
-- Followed by task_counts_mark_move.sql in the same transaction.
INSERT INTO taskq_counts (action, state, n)
SELECT action, state, count(*) FROM taskq_tasks NOT INDEXED
WHERE id > (SELECT counted_to FROM taskq_count_mark)
GROUP BY action, state
ON CONFLICT (action, state) DO UPDATE SET n = n + excluded.n
