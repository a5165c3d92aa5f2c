-- $1 ids: the tasks of a batch of completions that are still there, with
-- their state and lease token, through the primary key. Read after a lost
-- connection, for the completions the repeat found nothing to change:
-- one whose task is gone, or succeeded under its own lease, was applied
-- the first time.
SELECT id, state, lease_token FROM {schema}.taskq_tasks WHERE id = ANY ($1::bigint[])
