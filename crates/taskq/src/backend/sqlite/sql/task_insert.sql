-- ?1 action, ?2 payload, ?3 not before, ?4 max tries, ?5 timeout
-- (microseconds), ?6 parent, ?7 now, ?8 priority, ?9 unique key, ?10 the
-- states it counts (bits, see migration 0004), ?11 the start of its period
-- window, ?12 concurrency key. {on_conflict} is `ON CONFLICT DO NOTHING` for a task with a
-- unique key: one whose key another task holds is not inserted (no row
-- changed), and the caller looks that one up. A task without a key can
-- conflict with nothing, and is inserted without it.
INSERT INTO taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, parent, created_at, priority, unique_key, unique_states, unique_slot, concurrency_key)
VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
{on_conflict}
