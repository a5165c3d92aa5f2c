-- Schema version 10: dependencies between tasks (workflows).
--
-- New columns (added without rewriting the table):
-- * waiting_on: how many of a waiting task's dependencies may still run;
-- * dependencies: how many it has in all (its edges go with it);
-- * has_dependents: other tasks wait (or waited) for it, so that its end
--   settles their edges;
-- * run_if_dependencies_fail: it runs once its dependencies have finished
--   even if some failed or were cancelled, instead of being cancelled.
ALTER TABLE taskq_tasks ADD COLUMN waiting_on INTEGER NOT NULL DEFAULT 0 CHECK (waiting_on >= 0);
ALTER TABLE taskq_tasks ADD COLUMN dependencies INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taskq_tasks ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taskq_tasks ADD COLUMN run_if_dependencies_fail INTEGER NOT NULL DEFAULT 0;

-- Waiting tasks are not in the ready index; this one lists them.
CREATE INDEX taskq_tasks_waiting ON taskq_tasks (id) WHERE state = 'waiting';

-- One row per dependency: `task` waits for `depends_on`, which ended as
-- `outcome` (NULL while it may still run). A row stays until its
-- dependent is deleted, so that a dependent shows what it waited for.
CREATE TABLE taskq_dependencies (
    depends_on INTEGER NOT NULL,
    task       INTEGER NOT NULL,
    outcome    TEXT    CHECK (outcome IN ('succeeded', 'failed', 'cancelled')),
    PRIMARY KEY (depends_on, task)
) STRICT, WITHOUT ROWID;

CREATE INDEX taskq_dependencies_task ON taskq_dependencies (task, depends_on);

-- A task with dependents that ends: each waiting dependent whose edge to it
-- is open counts one dependency less, and is queued when that was the last,
-- or is cancelled when the task failed or was cancelled and the dependent
-- does not run anyway (which ends it in turn: the trigger runs for it,
-- with `recursive_triggers` on, as taskq's connections have it). Then the
-- edges record the outcome. A dependent's finish time is the task's.
CREATE TRIGGER taskq_tasks_settle AFTER UPDATE OF state ON taskq_tasks
WHEN new.has_dependents AND old.state IS NOT new.state
  AND new.state IN ('succeeded', 'failed', 'cancelled')
BEGIN
    UPDATE taskq_tasks
    SET waiting_on = waiting_on - 1,
        state = CASE WHEN new.state = 'succeeded' OR run_if_dependencies_fail
                     THEN CASE WHEN waiting_on <= 1 THEN 'queued' ELSE 'waiting' END
                     ELSE 'cancelled' END,
        finished_at = CASE WHEN new.state <> 'succeeded' AND NOT run_if_dependencies_fail
                           THEN new.finished_at END,
        last_error = CASE WHEN new.state <> 'succeeded' AND NOT run_if_dependencies_fail
                          THEN 'cancelled: its dependency ' || new.id
                               || CASE new.state WHEN 'failed' THEN ' failed' ELSE ' was cancelled' END
                          ELSE last_error END
    WHERE state = 'waiting'
      AND id IN (SELECT task FROM taskq_dependencies WHERE depends_on = new.id AND outcome IS NULL);
    UPDATE taskq_dependencies SET outcome = new.state WHERE depends_on = new.id AND outcome IS NULL;
END;

-- A task with dependents deleted: a running one was completed (taskq ends
-- any other unfinished task as cancelled before it deletes it); one deleted
-- unfinished by other SQL counts as cancelled, at the time of the clock.
CREATE TRIGGER taskq_tasks_settle_delete AFTER DELETE ON taskq_tasks
WHEN old.has_dependents AND old.state IN ('running', 'waiting', 'queued')
BEGIN
    UPDATE taskq_tasks
    SET waiting_on = waiting_on - 1,
        state = CASE WHEN old.state = 'running' OR run_if_dependencies_fail
                     THEN CASE WHEN waiting_on <= 1 THEN 'queued' ELSE 'waiting' END
                     ELSE 'cancelled' END,
        finished_at = CASE WHEN old.state <> 'running' AND NOT run_if_dependencies_fail
                           THEN CAST(unixepoch('subsec') * 1000000 AS INTEGER) END,
        last_error = CASE WHEN old.state <> 'running' AND NOT run_if_dependencies_fail
                          THEN 'cancelled: its dependency ' || old.id || ' was deleted'
                          ELSE last_error END
    WHERE state = 'waiting'
      AND id IN (SELECT task FROM taskq_dependencies WHERE depends_on = old.id AND outcome IS NULL);
    UPDATE taskq_dependencies
    SET outcome = CASE old.state WHEN 'running' THEN 'succeeded' ELSE 'cancelled' END
    WHERE depends_on = old.id AND outcome IS NULL;
END;

-- A deleted dependent takes its edges with it.
CREATE TRIGGER taskq_tasks_forget AFTER DELETE ON taskq_tasks
WHEN old.dependencies > 0
BEGIN
    DELETE FROM taskq_dependencies WHERE task = old.id;
END;
