-- $1 ids, $2 their lease tokens: the completions that arrived together.
-- Returns the ids whose lease still held. `id = ANY` finds the rows through
-- the primary key whatever the size of the table. A task is running exactly
-- when it has an expiry (a CHECK of the table); saying `state = 'running'`
-- instead would let the planner read the whole lease index (every running
-- task) in place of looking up the ids.
-- Running tasks are counted live (see migration 0003): deleting them
-- changes no tally, and the counting triggers skip them.
DELETE FROM {schema}.taskq_tasks AS t
WHERE t.id = ANY ($1::bigint[]) AND t.expires IS NOT NULL
  AND (t.id, t.lease_token) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))
RETURNING t.id
