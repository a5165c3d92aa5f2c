-- One task inserted already claimed: ?1 action, ?2 payload, ?3 now,
-- ?4 max tries, ?5 timeout (microseconds), ?6 parent. The caller checked
-- in the same transaction that no other task of the action is ready.
INSERT INTO taskq_tasks (action, payload, state, not_before, tries, max_tries, timeout_us, lease_token, expires, parent, created_at)
VALUES (?1, ?2, 'running', ?3, 1, ?4, ?5, 1, ?3 + ?5, ?6, ?3)
RETURNING id, action, payload, state, not_before, tries, max_tries, timeout_us, expires, parent, last_error, created_at, finished_at, lease_token
