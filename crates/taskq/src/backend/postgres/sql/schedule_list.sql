-- The time now (microseconds since the Unix epoch), then every schedule
-- by name, one row each; the columns after the first follow
-- `StoredSchedule`. With no schedule, one row of the time and NULLs.
SELECT (extract(epoch FROM now()) * 1000000)::bigint,
       s.name, s.action, s.payload, s.options, s.cron, s.zone, s.every_us, s.missed, s.grace_us,
       s.paused, s.next_at, s.last_at, s.last_task
FROM (VALUES (1)) AS one (x)
LEFT JOIN {schema}.taskq_schedules AS s ON true
ORDER BY s.name
