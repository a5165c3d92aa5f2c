SELECT action, state, count(*) FROM taskq_tasks GROUP BY action, state ORDER BY action
