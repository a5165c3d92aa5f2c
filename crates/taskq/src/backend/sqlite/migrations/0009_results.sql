-- Schema version 9: what a handler returned (`Outcome::complete_with_result`),
-- as JSON, kept with the succeeded task; NULL for every other task.
ALTER TABLE taskq_tasks ADD COLUMN result BLOB;
