-- ?1 is about to be deleted unfinished while other tasks wait for it: it
-- ends cancelled first (at ?2), so that its dependents are cancelled (or
-- run anyway) rather than take its deletion for a completion.
UPDATE taskq_tasks
SET state = 'cancelled', expires = NULL, finished_at = ?2, last_error = 'deleted before it finished'
WHERE id = ?1 AND has_dependents AND finished_at IS NULL
