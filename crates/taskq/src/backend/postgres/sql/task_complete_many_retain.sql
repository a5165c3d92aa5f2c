-- $1 ids, $2 their lease tokens. Returns the ids whose lease still held.
UPDATE {schema}.taskq_tasks AS t
SET state = 'succeeded', expires = NULL, finished_at = now()
WHERE t.id = ANY ($1::bigint[]) AND t.state = 'running'
  AND (t.id, t.lease_token) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))
RETURNING t.id
