-- A schedule declared anew, the parameters of schedule_insert.sql; a
-- NULL ?10 keeps the next tick. Paused stays as it was.
UPDATE taskq_schedules
SET action = ?2, payload = ?3, options = ?4, cron = ?5, zone = ?6, every_us = ?7,
    missed = ?8, grace_us = ?9, next_at = coalesce(?10, next_at), updated_at = ?11
WHERE name = ?1
