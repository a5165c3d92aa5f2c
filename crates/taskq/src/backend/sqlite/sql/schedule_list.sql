-- Every schedule, by name. The columns follow `StoredSchedule`.
SELECT name, action, payload, options, cron, zone, every_us, missed, grace_us,
       paused, next_at, last_at, last_task
FROM taskq_schedules
ORDER BY name
