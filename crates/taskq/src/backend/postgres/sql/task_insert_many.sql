-- $1 actions, $2 payloads, $3 run-at times (or NULL), $4 delays in
-- microseconds (or NULL), $5 max tries, $6 timeouts, $7 parents.
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
WITH inserted AS (
    INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, parent)
    SELECT a, p, 'queued', coalesce(r, now() + coalesce(d, 0) * interval '1 microsecond'), m, tu, pa
    FROM unnest($1::text[], $2::bytea[], $3::timestamptz[], $4::bigint[], $5::integer[], $6::bigint[], $7::bigint[])
        WITH ORDINALITY AS u (a, p, r, d, m, tu, pa, ord)
    WHERE (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    ORDER BY ord
    RETURNING id, action
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, 'queued', count(*) FROM inserted GROUP BY action
)
SELECT id FROM inserted ORDER BY id
