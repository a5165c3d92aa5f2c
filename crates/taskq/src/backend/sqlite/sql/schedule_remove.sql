-- ?1 the schedule's name.
DELETE FROM taskq_schedules WHERE name = ?1
