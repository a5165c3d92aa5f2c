-- Moves the mark above every task, once they are counted; returns it.
UPDATE taskq_count_mark
SET counted_to = max(counted_to, (SELECT coalesce(max(id), 0) FROM taskq_tasks))
RETURNING counted_to
