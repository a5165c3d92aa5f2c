-- Task counts per action and state, kept up to date by triggers in the
-- transaction of every change, so that len and stats read a few rows
-- instead of counting the task table. Rows whose count fell to 0 stay.
CREATE TABLE taskq_counts (
    action TEXT    NOT NULL,
    state  TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (action, state)
) STRICT, WITHOUT ROWID;

INSERT INTO taskq_counts (action, state, n)
SELECT action, state, count(*) FROM taskq_tasks GROUP BY action, state;

CREATE TRIGGER taskq_tasks_count_insert AFTER INSERT ON taskq_tasks
BEGIN
    INSERT INTO taskq_counts (action, state, n) VALUES (new.action, new.state, 1)
    ON CONFLICT (action, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER taskq_tasks_count_delete AFTER DELETE ON taskq_tasks
BEGIN
    UPDATE taskq_counts SET n = n - 1 WHERE action = old.action AND state = old.state;
END;

CREATE TRIGGER taskq_tasks_count_update AFTER UPDATE OF action, state ON taskq_tasks
WHEN old.action IS NOT new.action OR old.state IS NOT new.state
BEGIN
    UPDATE taskq_counts SET n = n - 1 WHERE action = old.action AND state = old.state;
    INSERT INTO taskq_counts (action, state, n) VALUES (new.action, new.state, 1)
    ON CONFLICT (action, state) DO UPDATE SET n = n + 1;
END;
