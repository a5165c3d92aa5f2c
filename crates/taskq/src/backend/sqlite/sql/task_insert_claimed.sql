-- One task inserted already claimed: ?1 action, ?2 payload, ?3 now,
-- ?4 max tries, ?5 timeout (microseconds), ?6 parent, ?7 priority, ?8 the
-- worker (JSON). The caller checked in the same transaction that no other
-- task of the action is ready and that the action is not paused; the task
-- has no unique key.
INSERT INTO taskq_tasks (action, payload, state, not_before, tries, max_tries, timeout_us, lease_token, expires, parent, created_at, priority, started_at, worker)
VALUES (?1, ?2, 'running', ?3, 1, ?4, ?5, 1, ?3 + ?5, ?6, ?3, ?7, ?3, ?8)
RETURNING id, action, payload, state, not_before, tries, max_tries, timeout_us, expires, parent, last_error, created_at, finished_at, lease_token, priority, unique_key, unique_states, unique_slot, cancel_requested, started_at, worker, attempts, concurrency_key
