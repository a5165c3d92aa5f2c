-- ?1 action, ?2 the tokens left in its bucket, ?3 now.
UPDATE taskq_limits SET tokens = ?2, refilled_at = ?3 WHERE action = ?1
