-- ?1 the schedule's name, ?2 the last tick enqueued, ?3 its task.
UPDATE taskq_schedules SET last_at = ?2, last_task = ?3 WHERE name = ?1
