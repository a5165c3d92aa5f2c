-- $1 state, $2 microseconds: finished at least that long ago.
DELETE FROM {schema}.taskq_tasks
WHERE state = $1 AND finished_at <= now() - $2::bigint * interval '1 microsecond'
