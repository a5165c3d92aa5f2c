-- A task with dependencies: ?1 to ?12 as in task_insert.sql, ?13 the state
-- it starts in (waiting, queued, or cancelled when a dependency failed),
-- ?14 how many dependencies may still run, ?15 how many it has, ?16
-- whether it runs even if they fail, ?17 the reason of a cancelled start.
-- A task whose unique key another task holds is not inserted.
INSERT INTO taskq_tasks (action, payload, state, not_before, max_tries, timeout_us, parent, created_at, priority, unique_key, unique_states, unique_slot, concurrency_key,
                         waiting_on, dependencies, run_if_dependencies_fail, finished_at, last_error)
VALUES (?1, ?2, ?13, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
        ?14, ?15, ?16, CASE WHEN ?13 = 'cancelled' THEN ?7 END, ?17)
ON CONFLICT DO NOTHING
