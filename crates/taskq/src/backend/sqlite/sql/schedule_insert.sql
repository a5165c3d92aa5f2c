-- A new schedule: ?1 name, ?2 action, ?3 payload, ?4 options, ?5 cron,
-- ?6 zone, ?7 every_us, ?8 missed, ?9 grace_us, ?10 next_at, ?11 now.
INSERT INTO taskq_schedules
    (name, action, payload, options, cron, zone, every_us, missed, grace_us, next_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
