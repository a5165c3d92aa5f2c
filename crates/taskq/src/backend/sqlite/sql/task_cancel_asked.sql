-- ?1 id: whether the running task's cancellation was asked for (the watch
-- of the file looks, for the handlers of its process, when another
-- connection committed).
SELECT cancel_requested IS NOT NULL FROM taskq_tasks WHERE id = ?1 AND state = 'running'
