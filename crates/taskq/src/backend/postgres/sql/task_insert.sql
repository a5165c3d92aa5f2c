-- One task: $1 action, $2 payload, $3 run-at time (or NULL), $4 delay in
-- microseconds (or NULL), $5 max tries, $6 timeout, $7 parent.
-- Counts its changes in taskq_counts; `taskq.counted` tells the counting
-- triggers (meant for writers other than taskq) that it does.
WITH inserted AS (
    INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, parent)
    SELECT
        $1::text, $2::bytea, 'queued',
        coalesce($3::timestamptz, now() + coalesce($4::bigint, 0) * interval '1 microsecond'),
        $5::integer, $6::bigint, $7::bigint
    WHERE (SELECT set_config('taskq.counted', 'on', true)) = 'on'
    RETURNING id, action
), counted AS (
    INSERT INTO {schema}.taskq_counts (action, state, n)
    SELECT action, 'queued', count(*) FROM inserted GROUP BY action
)
SELECT id FROM inserted
