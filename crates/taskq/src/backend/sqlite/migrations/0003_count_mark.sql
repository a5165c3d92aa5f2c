-- Inserts are no longer counted one by one (a second write per insert):
-- a task whose id is above the mark `counted_to` is counted live by len
-- and stats, and inserts adopt such tasks into taskq_counts in batches,
-- moving the mark. SQLite runs one write transaction at a time and never
-- reuses an id (AUTOINCREMENT), so the tasks above the mark are exactly
-- those inserted since the last adoption that still exist. The triggers
-- count changes (by any writer) to tasks at or below the mark only.
CREATE TABLE taskq_count_mark (
    only       INTEGER PRIMARY KEY CHECK (only = 1),
    counted_to INTEGER NOT NULL
) STRICT;

INSERT INTO taskq_count_mark (only, counted_to)
SELECT 1, coalesce(max(id), 0) FROM taskq_tasks;

DROP TRIGGER taskq_tasks_count_insert;
DROP TRIGGER taskq_tasks_count_delete;
DROP TRIGGER taskq_tasks_count_update;

CREATE TRIGGER taskq_tasks_count_delete AFTER DELETE ON taskq_tasks
WHEN old.id <= (SELECT counted_to FROM taskq_count_mark)
BEGIN
    UPDATE taskq_counts SET n = n - 1 WHERE action = old.action AND state = old.state;
END;

CREATE TRIGGER taskq_tasks_count_update AFTER UPDATE OF action, state ON taskq_tasks
WHEN (old.action IS NOT new.action OR old.state IS NOT new.state)
  AND old.id <= (SELECT counted_to FROM taskq_count_mark)
BEGIN
    UPDATE taskq_counts SET n = n - 1 WHERE action = old.action AND state = old.state;
    INSERT INTO taskq_counts (action, state, n) VALUES (new.action, new.state, 1)
    ON CONFLICT (action, state) DO UPDATE SET n = n + 1;
END;
