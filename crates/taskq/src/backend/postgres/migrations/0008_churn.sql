-- Schema version 8: the tables that churn are vacuumed as soon as
-- autovacuum looks at them (see docs/backends.md, "Under sustained churn").
--
-- Every task leaves two dead rows in taskq_tasks (the version its claim
-- replaced, and itself once completed), and claims and folds leave some in
-- taskq_tallies. By default autovacuum waits for 20% of a table to be dead:
-- behind a backlog of a million tasks, 200,000 dead rows. Here any 5,000
-- are enough. It keeps its throttled pace: while a pinned xmin horizon
-- keeps it from removing anything, each round scans the grown table, and
-- at full speed that scan would take a core from the claims. Autovacuum
-- still looks only once a minute (`autovacuum_naptime`, a server setting);
-- between its rounds the backend can vacuum them itself
-- (`PostgresConfig::vacuum_after`, off unless set).
--
-- The fill factor stays 100: every update of the hot path changes an
-- indexed column (the state, which each partial index tests, or the
-- expiry), so none can be a HOT update that room left free on a page
-- would serve; room left free would only spread the rows over more pages.
ALTER TABLE {schema}.taskq_tasks SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000
);
ALTER TABLE {schema}.taskq_tallies SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000
);
