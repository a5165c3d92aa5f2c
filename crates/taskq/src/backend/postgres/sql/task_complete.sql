-- $1 id, $2 lease token.
-- `expires IS NOT NULL` means running (see task_complete_many.sql).
-- Running tasks are counted live (see migration 0003): deleting one
-- changes no tally, and the counting triggers skip it.
DELETE FROM {schema}.taskq_tasks
WHERE id = $1 AND lease_token = $2 AND expires IS NOT NULL
