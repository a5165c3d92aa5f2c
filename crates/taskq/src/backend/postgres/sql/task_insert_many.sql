-- $1 actions, $2 payloads, $3 run-at times (or NULL), $4 delays in
-- microseconds (or NULL), $5 max tries, $6 timeouts, $7 parents.
WITH inserted AS (
    INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, parent)
    SELECT a, p, 'queued', coalesce(r, now() + coalesce(d, 0) * interval '1 microsecond'), m, tu, pa
    FROM unnest($1::text[], $2::bytea[], $3::timestamptz[], $4::bigint[], $5::integer[], $6::bigint[], $7::bigint[])
        WITH ORDINALITY AS u (a, p, r, d, m, tu, pa, ord)
    ORDER BY ord
    RETURNING id
)
SELECT id FROM inserted ORDER BY id
