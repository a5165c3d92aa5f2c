DELETE FROM {schema}.taskq_tasks WHERE id = $1
