-- $1 action, $2 limit, $3 the worker (JSON). The claim of an action with
-- limits: what they admit, through taskq_claim_limited (migration 0007),
-- which locks the action's limits row and counts what runs after the lock.
SELECT id, action, payload, state, not_before, tries, max_tries, timeout_us, expires, parent, last_error, created_at, finished_at, lease_token, priority, unique_key, unique_states, unique_slot, cancel_requested, started_at, worker, attempts, concurrency_key
FROM {schema}.taskq_claim_limited($1::text, $2::integer, $3::text)
