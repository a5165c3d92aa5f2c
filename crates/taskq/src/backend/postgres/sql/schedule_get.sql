-- The time now, then the schedule $1, locked until the transaction ends
-- (the columns of schedule_list.sql); with no such schedule, the time and
-- NULLs.
SELECT (extract(epoch FROM now()) * 1000000)::bigint,
       s.name, s.action, s.payload, s.options, s.cron, s.zone, s.every_us, s.missed, s.grace_us,
       s.paused, s.next_at, s.last_at, s.last_task
FROM (VALUES (1)) AS one (x)
LEFT JOIN LATERAL (
    SELECT * FROM {schema}.taskq_schedules WHERE name = $1::text FOR UPDATE
) AS s ON true
