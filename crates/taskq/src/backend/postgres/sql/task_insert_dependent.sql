-- A task with dependencies: $1 to $12 as in task_insert.sql, $13 the state
-- it starts in (waiting, queued, or cancelled when a dependency failed),
-- $14 how many dependencies may still run, $15 how many it has, $16
-- whether it runs even if they fail, $17 the reason of a cancelled start.
-- A task whose unique key another task holds is not inserted (no row).
-- Inserted uncounted, as task_insert.sql inserts (see migration 0003).
INSERT INTO {schema}.taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, parent, counted, priority, unique_key, unique_states, unique_slot, concurrency_key,
                                  waiting_on, dependencies, run_if_dependencies_fail, finished_at, last_error)
VALUES (
    $1::text, $2::bytea, $13::text,
    coalesce(timestamptz 'epoch' + $3::bigint * interval '1 microsecond', now() + coalesce($4::bigint, 0) * interval '1 microsecond'),
    $5::integer, $6::bigint, $7::bigint, false, $8::smallint, $9::text, $10::smallint,
    CASE WHEN $11::bigint IS NOT NULL
         THEN timestamptz 'epoch' + (floor(extract(epoch FROM now()) * 1000000 / $11::bigint)::bigint * $11::bigint) * interval '1 microsecond' END,
    $12::text,
    $14::integer, $15::integer, $16::boolean, CASE WHEN $13::text = 'cancelled' THEN now() END, $17::text
)
ON CONFLICT DO NOTHING
RETURNING id
