-- $1 action. Removes its limits.
DELETE FROM {schema}.taskq_limits WHERE action = $1
