-- $1 the notification channel, $2 actions with tasks ready now, $3 the
-- application_name of the channel's taskq listeners, $4 the server process
-- id of this backend's own listener (0: none). task_notify, sent only when
-- another taskq listener of the channel is connected: for an enqueue that
-- does not know yet whether anyone listens (the first of a process).
SELECT pg_notify($1, action) FROM unnest($2::text[]) AS action
WHERE EXISTS (
    SELECT 1 FROM pg_stat_activity
    WHERE application_name = $3 AND datname = current_database() AND pid <> $4
)
