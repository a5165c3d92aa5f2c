-- ?1 the schedule's name, ?2 paused (1) or not (0), ?3 now. Changes a
-- schedule only if it was not already so.
UPDATE taskq_schedules
SET paused = ?2, updated_at = ?3
WHERE name = ?1 AND paused <> ?2
