-- $1 actions, $2 unique keys, $3 their periods in microseconds (or NULL):
-- for each, in order, the task that holds the key through either unique
-- index (see migration 0004), or NULL if none does any more.
SELECT (
    SELECT id FROM (
        SELECT id FROM {schema}.taskq_tasks
        WHERE action = u.a AND unique_key = u.k AND unique_key IS NOT NULL
          AND (unique_states & CASE state WHEN 'waiting' THEN 1 WHEN 'queued' THEN 2 WHEN 'running' THEN 4
                                          WHEN 'succeeded' THEN 8 WHEN 'failed' THEN 16 ELSE 32 END::smallint) <> 0
        UNION ALL
        SELECT id FROM {schema}.taskq_tasks
        WHERE action = u.a AND unique_key = u.k AND unique_slot IS NOT NULL
          AND unique_slot = timestamptz 'epoch' + (floor(extract(epoch FROM now()) * 1000000 / u.kp)::bigint * u.kp) * interval '1 microsecond'
    ) AS holder LIMIT 1
) AS id
FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS u (a, k, kp, ord)
ORDER BY ord
