-- $1 id, $2 lease token.
UPDATE {schema}.taskq_tasks
SET state = 'succeeded', expires = NULL, finished_at = now()
WHERE id = $1 AND lease_token = $2 AND state = 'running'
