-- $1 minutes (Unix seconds of their starts), $2 actions, $3 completed, $4
-- retried, $5 failed, one element per row (no two for one minute and
-- action): adds them to the history; $6 removes the minutes before it,
-- the first rows of the primary key.
WITH pruned AS (
    DELETE FROM {schema}.taskq_throughput WHERE minute < $6::bigint
)
INSERT INTO {schema}.taskq_throughput AS t (minute, action, completed, retried, failed)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
ON CONFLICT (minute, action) DO UPDATE
SET completed = t.completed + excluded.completed,
    retried = t.retried + excluded.retried,
    failed = t.failed + excluded.failed
