-- $1 parent: the ids of its follow-ups, oldest first, through the index
-- of parents. Read after a lost connection, when a completion with
-- follow-ups turned out to have committed.
SELECT id FROM {schema}.taskq_tasks WHERE parent = $1 ORDER BY id
