-- $1 actions, $2 payloads, $3 run-at times in microseconds
-- since the Unix epoch (or NULL), $4 delays in
-- microseconds (or NULL), $5 max tries, $6 timeouts, $7 parents, $8
-- priorities, $9 unique keys, $10 the states each key counts (bits, see
-- migration 0004), $11 their periods in microseconds (or NULL), $12
-- their concurrency keys.
-- {on_conflict} is `ON CONFLICT DO NOTHING` when a task of the batch has a
-- unique key (else nothing: a speculative insert costs each row): a task
-- whose key another task (or an earlier one of the batch) holds is not
-- inserted. The rows returned, in id order, are those inserted, in the
-- order given.
-- Tallies its changes in taskq_tallies, for counted tasks that are not
-- running (running and uncounted tasks are counted live, see migration
-- 0003); `taskq.tallied` tells the counting triggers (meant for writers
-- other than taskq) that it does.
WITH inserted AS (
    INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, parent, priority, unique_key, unique_states, unique_slot, concurrency_key)
    SELECT a, p, 'queued', coalesce(timestamptz 'epoch' + r * interval '1 microsecond', now() + coalesce(d, 0) * interval '1 microsecond'), m, tu, pa, pr, k, ks,
           CASE WHEN kp IS NOT NULL
                THEN timestamptz 'epoch' + (floor(extract(epoch FROM now()) * 1000000 / kp)::bigint * kp) * interval '1 microsecond' END, ck
    FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::bigint[], $5::integer[], $6::bigint[], $7::bigint[],
                $8::smallint[], $9::text[], $10::smallint[], $11::bigint[], $12::text[])
        WITH ORDINALITY AS u (a, p, r, d, m, tu, pa, pr, k, ks, kp, ck, ord)
    WHERE (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    ORDER BY ord
    {on_conflict}
    RETURNING id, action, unique_key, unique_slot
), counted AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, 'queued', count(*) FROM inserted GROUP BY action
)
SELECT id, action, unique_key, unique_slot FROM inserted ORDER BY id
