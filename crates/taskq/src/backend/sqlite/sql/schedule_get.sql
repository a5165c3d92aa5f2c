-- One schedule, ?1 its name; the columns of schedule_list.sql.
SELECT name, action, payload, options, cron, zone, every_us, missed, grace_us,
       paused, next_at, last_at, last_task
FROM taskq_schedules
WHERE name = ?1
