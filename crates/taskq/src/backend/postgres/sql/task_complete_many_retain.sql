-- $1 ids, $2 their lease tokens. Returns the ids whose lease still held.
UPDATE {schema}.taskq_tasks AS t
SET state = 'succeeded', expires = NULL, finished_at = now()
FROM unnest($1::bigint[], $2::bigint[]) AS done (id, token)
WHERE t.id = done.id AND t.lease_token = done.token AND t.state = 'running'
RETURNING t.id
