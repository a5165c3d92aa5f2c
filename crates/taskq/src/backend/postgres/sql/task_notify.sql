-- $1 the notification channel, $2 actions with tasks ready now. Sent in a
-- transaction of its own after an insert committed: NOTIFY serializes the
-- commits of the transactions that send it, so inserts do not.
SELECT pg_notify($1, action) FROM unnest($2::text[]) AS action
