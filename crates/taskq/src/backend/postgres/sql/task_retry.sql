-- $1 id, $2 the notification channel.
WITH retried AS (
    UPDATE {schema}.taskq_tasks
    SET state = 'queued', tries = 0, not_before = now(), finished_at = NULL
    WHERE id = $1 AND state = 'failed'
    RETURNING action
)
SELECT pg_notify($2, action) FROM retried
