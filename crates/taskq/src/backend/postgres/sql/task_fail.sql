-- $1 id, $2 lease token, $3 error, $4 retry delay in microseconds, or NULL
-- to fail for good.
UPDATE {schema}.taskq_tasks
SET state = CASE WHEN $4::bigint IS NULL THEN 'failed' ELSE 'queued' END,
    not_before = CASE WHEN $4::bigint IS NULL THEN not_before ELSE now() + $4::bigint * interval '1 microsecond' END,
    finished_at = CASE WHEN $4::bigint IS NULL THEN now() END,
    expires = NULL,
    last_error = $3
WHERE id = $1 AND lease_token = $2 AND state = 'running'
