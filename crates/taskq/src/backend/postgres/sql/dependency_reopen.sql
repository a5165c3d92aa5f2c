-- $1 was queued again: each waiting dependent whose edge to it had closed
-- (it ran anyway after $1 failed) waits for it again, and the edge opens.
WITH reopened AS (
    UPDATE {schema}.taskq_dependencies AS d SET outcome = NULL
    FROM {schema}.taskq_tasks AS t
    WHERE d.depends_on = $1::bigint AND d.outcome IS NOT NULL AND t.id = d.task AND t.state = 'waiting'
    RETURNING d.task
)
UPDATE {schema}.taskq_tasks AS t SET waiting_on = t.waiting_on + 1
FROM reopened WHERE t.id = reopened.task
