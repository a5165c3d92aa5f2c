DELETE FROM taskq_paused WHERE action = ?1
