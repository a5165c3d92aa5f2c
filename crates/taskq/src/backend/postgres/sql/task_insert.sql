-- One task: $1 action, $2 payload, $3 run-at time in
-- microseconds since the Unix epoch (or NULL), $4 delay in
-- microseconds (or NULL), $5 max tries, $6 timeout, $7 parent, $8
-- priority, $9 unique key, $10 the states it counts (bits, see migration
-- 0004), $11 its period in microseconds (or NULL), $12 its concurrency
-- key. {on_conflict} is
-- `ON CONFLICT DO NOTHING` for a task with a unique key: one whose key
-- another task holds is not inserted (no row returned). A task without a
-- key can conflict with nothing, and its insert skips the cost of a
-- speculative one.
-- Inserted uncounted (see migration 0003): no count row, and the counting
-- triggers skip it.
INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, parent, counted, priority, unique_key, unique_states, unique_slot, concurrency_key)
VALUES (
    $1::text, $2::bytea, 'queued',
    coalesce(timestamptz 'epoch' + $3::bigint * interval '1 microsecond', now() + coalesce($4::bigint, 0) * interval '1 microsecond'),
    $5::integer, $6::bigint, $7::bigint, false, $8::smallint, $9::text, $10::smallint,
    CASE WHEN $11::bigint IS NOT NULL
         THEN timestamptz 'epoch' + (floor(extract(epoch FROM now()) * 1000000 / $11::bigint)::bigint * $11::bigint) * interval '1 microsecond' END,
    $12::text
)
{on_conflict}
RETURNING id, action, unique_key, unique_slot
