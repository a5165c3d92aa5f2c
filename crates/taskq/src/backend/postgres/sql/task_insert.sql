-- One task: $1 action, $2 payload, $3 run-at time (or NULL), $4 delay in
-- microseconds (or NULL), $5 max tries, $6 timeout, $7 parent.
-- Counts itself in taskq_counts; `taskq.counted` tells the counting
-- triggers (meant for writers other than taskq) that it does. The count
-- goes first, and the task is inserted from its row, so the setting is in
-- place before the task's row exists; a plain single-row INSERT with the
-- count as a second CTE cost about 20% of the enqueue rate (pgbench).
WITH counted AS (
    INSERT INTO {schema}.taskq_counts (action, state, n)
    SELECT $1::text, 'queued', 1
    WHERE (SELECT set_config('taskq.counted', 'on', true)) = 'on'
    RETURNING action
)
INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, parent)
SELECT
    action, $2::bytea, 'queued',
    coalesce($3::timestamptz, now() + coalesce($4::bigint, 0) * interval '1 microsecond'),
    $5::integer, $6::bigint, $7::bigint
FROM counted
RETURNING id
