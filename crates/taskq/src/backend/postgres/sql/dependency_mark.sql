-- $1 the tasks another is about to depend on, locked in id order (a
-- completion of one waits until the dependent's edges are committed, and
-- then settles them), marked as having dependents, with their states. A
-- task missing from the answer no longer exists.
WITH locked AS (
    SELECT id, state, has_dependents FROM {schema}.taskq_tasks
    WHERE id = ANY ($1::bigint[])
    ORDER BY id
    FOR UPDATE
), marked AS (
    UPDATE {schema}.taskq_tasks AS t SET has_dependents = true
    FROM locked WHERE t.id = locked.id AND NOT locked.has_dependents
)
SELECT id, state FROM locked
