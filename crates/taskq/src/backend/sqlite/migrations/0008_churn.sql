-- Schema version 8: nothing to change on SQLite. PostgreSQL's migration 8
-- sets the autovacuum of its tables that churn; SQLite reuses a deleted
-- row's space in the same write and keeps no old row versions, so it has
-- nothing to tune. The step is here so that both backends number their
-- migrations alike.
SELECT 1;
