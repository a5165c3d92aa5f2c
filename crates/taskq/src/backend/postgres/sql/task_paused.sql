SELECT action FROM {schema}.taskq_paused ORDER BY action COLLATE "C"
