-- $1 the schedule's name, $2 paused or not. One row if there is such a
-- schedule: whether this changed it.
WITH changed AS (
    UPDATE {schema}.taskq_schedules
    SET paused = $2, updated_at = (extract(epoch FROM now()) * 1000000)::bigint
    WHERE name = $1 AND paused <> $2
    RETURNING name
)
SELECT EXISTS (SELECT 1 FROM changed)
FROM {schema}.taskq_schedules
WHERE name = $1
