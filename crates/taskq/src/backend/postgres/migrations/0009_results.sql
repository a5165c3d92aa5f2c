-- Schema version 9: what a handler returned (`Outcome::complete_with_result`),
-- as JSON, kept with the succeeded task; NULL for every other task. A new
-- column without a default changes no row: the table is not rewritten.
ALTER TABLE {schema}.taskq_tasks ADD COLUMN result bytea;
