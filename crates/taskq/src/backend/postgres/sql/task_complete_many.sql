-- $1 ids, $2 their lease tokens: the completions that arrived together.
-- Returns the ids whose lease still held.
DELETE FROM {schema}.taskq_tasks AS t
USING unnest($1::bigint[], $2::bigint[]) AS done (id, token)
WHERE t.id = done.id AND t.lease_token = done.token AND t.state = 'running'
RETURNING t.id
