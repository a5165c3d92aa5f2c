-- ?1 a task another is about to depend on: marked as having dependents
-- (so that its end settles their edges), and its state returned; no row
-- if it no longer exists.
UPDATE taskq_tasks SET has_dependents = 1 WHERE id = ?1 RETURNING state
