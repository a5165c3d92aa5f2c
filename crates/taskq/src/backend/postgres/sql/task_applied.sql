-- $1 id, $2 lease token: the state a try's end (a fail or release)
-- left, when that end was applied under this lease and no claim took the
-- task since (a claim gives it a new token). Read after a lost
-- connection, when the repeat found nothing to change.
SELECT state FROM {schema}.taskq_tasks
WHERE id = $1 AND lease_token = $2 AND state <> 'running'
