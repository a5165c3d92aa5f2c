-- $1 action, $2 the notification channel: resumes it and wakes listeners.
WITH resumed AS (
    DELETE FROM {schema}.taskq_paused WHERE action = $1 RETURNING action
)
SELECT pg_notify($2, action) FROM resumed
