-- Adopts uncounted tasks that are not running (see migration 0003) into
-- taskq_tallies while more than $1 of them wait, up to $2 at a time, so
-- that `len` and `stats` count few tasks live. Tasks another transaction
-- holds are skipped. Returns how many it adopted.
WITH many AS (
    SELECT count(*) > $1::bigint AS yes
    FROM (
        SELECT 1 FROM {schema}.taskq_tasks
        WHERE NOT counted AND state <> 'running'
        LIMIT $1::bigint + 1
    ) AS waiting
), adopted AS (
    UPDATE {schema}.taskq_tasks AS t
    SET counted = true
    WHERE t.id = ANY (ARRAY(
            SELECT id FROM {schema}.taskq_tasks
            WHERE NOT counted AND state <> 'running' AND (SELECT yes FROM many)
            LIMIT $2::bigint
            FOR UPDATE SKIP LOCKED
        ))
      AND NOT t.counted AND t.state <> 'running'
      AND (SELECT set_config('taskq.tallied', 'on', true)) = 'on'
    RETURNING t.action, t.state
), tallied AS (
    INSERT INTO {schema}.taskq_tallies (action, state, n)
    SELECT action, state, count(*) FROM adopted GROUP BY action, state
)
SELECT count(*) FROM adopted
