DELETE FROM taskq_tasks WHERE id = ?1
