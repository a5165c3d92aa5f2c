-- One task: $1 action, $2 payload, $3 run-at time (or NULL), $4 delay in
-- microseconds (or NULL), $5 max tries, $6 timeout, $7 parent.
-- Inserted uncounted (see migration 0003): no count row, and the counting
-- triggers skip it.
INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, parent, counted)
VALUES (
    $1::text, $2::bytea, 'queued',
    coalesce($3::timestamptz, now() + coalesce($4::bigint, 0) * interval '1 microsecond'),
    $5::integer, $6::bigint, $7::bigint, false
)
RETURNING id
