-- $1 is about to be deleted unfinished while other tasks wait for it: it
-- ends cancelled first, so that its dependents are cancelled (or run
-- anyway) rather than take its deletion for a completion. Counted by the
-- counting triggers.
UPDATE {schema}.taskq_tasks
SET state = 'cancelled', expires = NULL, finished_at = now(), last_error = 'deleted before it finished'
WHERE id = $1::bigint AND has_dependents AND finished_at IS NULL
