-- Folds the appended tallies into one row per action and state, and
-- empties taskq_counts, where a taskq of the previous schema version may
-- still write during an upgrade (see migration 0003). $1 an advisory lock
-- key: one folder at a time, the others skip their turn.
WITH turn AS (
    SELECT pg_try_advisory_xact_lock($1) AS mine
), legacy AS (
    DELETE FROM {schema}.taskq_counts WHERE (SELECT mine FROM turn)
), folded AS (
    DELETE FROM {schema}.taskq_tallies WHERE (SELECT mine FROM turn) RETURNING action, state, n
)
INSERT INTO {schema}.taskq_tallies (action, state, n)
SELECT action, state, sum(n) FROM folded GROUP BY action, state HAVING sum(n) <> 0
