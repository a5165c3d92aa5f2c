-- ?1 minute (Unix seconds of its start), ?2 action, ?3 completed, ?4
-- retried, ?5 failed: adds to the minute's counts of the action.
INSERT INTO taskq_throughput (minute, action, completed, retried, failed)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (minute, action) DO UPDATE
SET completed = completed + excluded.completed,
    retried = retried + excluded.retried,
    failed = failed + excluded.failed
