-- ?1: the history from this minute (Unix seconds) on, a range of the
-- primary key.
SELECT minute, action, completed, retried, failed FROM taskq_throughput
WHERE minute >= ?1
ORDER BY minute, action
