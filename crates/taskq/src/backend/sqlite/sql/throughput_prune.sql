-- ?1: removes the history of the minutes before this one (Unix seconds),
-- the first rows of the primary key.
DELETE FROM taskq_throughput WHERE minute < ?1
