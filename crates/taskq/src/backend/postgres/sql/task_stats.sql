SELECT action, state, count(*) FROM {schema}.taskq_tasks GROUP BY action, state ORDER BY action COLLATE "C"
