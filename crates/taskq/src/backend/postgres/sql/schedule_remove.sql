-- $1 the schedule's name.
DELETE FROM {schema}.taskq_schedules WHERE name = $1
