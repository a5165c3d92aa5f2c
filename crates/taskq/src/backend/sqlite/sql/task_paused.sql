SELECT action FROM taskq_paused ORDER BY action
