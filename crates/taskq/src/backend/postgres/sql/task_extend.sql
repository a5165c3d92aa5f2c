-- $1 id, $2 lease token, $3 microseconds from now. Returns the new lease
-- end, and whether the task's cancellation was asked for.
-- `expires IS NOT NULL` means running (see task_complete_many.sql).
UPDATE {schema}.taskq_tasks SET expires = now() + $3::bigint * interval '1 microsecond'
WHERE id = $1 AND lease_token = $2 AND expires IS NOT NULL
RETURNING expires, cancel_requested IS NOT NULL
