-- ?1 action. Removes its limits.
DELETE FROM taskq_limits WHERE action = ?1
