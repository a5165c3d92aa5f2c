-- Folds the appended count changes into one row per action and state. $1
-- an advisory lock key: one folder at a time, the others skip their turn.
WITH turn AS (
    SELECT pg_try_advisory_xact_lock($1) AS mine
), folded AS (
    DELETE FROM {schema}.taskq_counts WHERE (SELECT mine FROM turn) RETURNING action, state, n
)
INSERT INTO {schema}.taskq_counts (action, state, n)
SELECT action, state, sum(n) FROM folded GROUP BY action, state HAVING sum(n) <> 0
