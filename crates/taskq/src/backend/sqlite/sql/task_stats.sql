-- The kept counts per action and state (see migration 0002).
SELECT action, state, n FROM taskq_counts WHERE n > 0 ORDER BY action
