-- $1 id, $2 lease token.
DELETE FROM {schema}.taskq_tasks WHERE id = $1 AND lease_token = $2 AND state = 'running'
