-- Schema version 10: dependencies between tasks (workflows). {schema} is
-- the validated, quoted schema name.
--
-- New columns (added without rewriting the table):
-- * waiting_on: how many of a waiting task's dependencies may still run;
-- * dependencies: how many it has in all (its edges go with it);
-- * has_dependents: other tasks wait (or waited) for it, so that its end
--   settles their edges;
-- * run_if_dependencies_fail: it runs once its dependencies have finished
--   even if some failed or were cancelled, instead of being cancelled.
ALTER TABLE {schema}.taskq_tasks
    ADD COLUMN waiting_on integer NOT NULL DEFAULT 0 CHECK (waiting_on >= 0),
    ADD COLUMN dependencies integer NOT NULL DEFAULT 0,
    ADD COLUMN has_dependents boolean NOT NULL DEFAULT false,
    ADD COLUMN run_if_dependencies_fail boolean NOT NULL DEFAULT false;

-- Waiting tasks are not in the ready index; this one lists them.
CREATE INDEX taskq_tasks_waiting ON {schema}.taskq_tasks (id) WHERE state = 'waiting';

-- One row per dependency: `task` waits for `depends_on`, which ended as
-- `outcome` (NULL while it may still run). A row stays until its
-- dependent is deleted, so that a dependent shows what it waited for.
CREATE TABLE {schema}.taskq_dependencies (
    depends_on bigint NOT NULL,
    task       bigint NOT NULL,
    outcome    text   CHECK (outcome IN ('succeeded', 'failed', 'cancelled')),
    PRIMARY KEY (depends_on, task)
);

CREATE INDEX taskq_dependencies_task ON {schema}.taskq_dependencies (task, depends_on);

-- Task `ended` has ended as `outcome`: each waiting dependent whose edge to
-- it is open counts one dependency less, and is queued when that was the
-- last (its action woken on `channel`), or is cancelled when `outcome` is
-- not success and the dependent does not run anyway (which ends it in
-- turn: the trigger runs for it). Then the edges record the outcome.
-- The dependents are locked in id order first, so that two completions
-- with dependents in common take their locks in one order. Their changes
-- are counted by the counting triggers: `taskq.tallied` is off meanwhile.
CREATE FUNCTION {schema}.taskq_settle(ended bigint, ended_as text, channel text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    tallied text := current_setting('taskq.tallied', true);
    woken bigint;
BEGIN
    PERFORM set_config('taskq.tallied', '', true);
    PERFORM 1 FROM {schema}.taskq_tasks
    WHERE id IN (SELECT d.task FROM {schema}.taskq_dependencies AS d
                 WHERE d.depends_on = ended AND d.outcome IS NULL)
      AND state = 'waiting'
    ORDER BY id
    FOR UPDATE;
    WITH changed AS (
        UPDATE {schema}.taskq_tasks AS t
        SET waiting_on = t.waiting_on - 1,
            state = CASE WHEN ended_as = 'succeeded' OR t.run_if_dependencies_fail
                         THEN CASE WHEN t.waiting_on <= 1 THEN 'queued' ELSE 'waiting' END
                         ELSE 'cancelled' END,
            finished_at = CASE WHEN ended_as <> 'succeeded' AND NOT t.run_if_dependencies_fail
                               THEN now() END,
            last_error = CASE WHEN ended_as <> 'succeeded' AND NOT t.run_if_dependencies_fail
                              THEN 'cancelled: its dependency ' || ended
                                   || CASE ended_as WHEN 'failed' THEN ' failed' ELSE ' was cancelled' END
                              ELSE t.last_error END
        WHERE t.state = 'waiting'
          AND t.id IN (SELECT d.task FROM {schema}.taskq_dependencies AS d
                       WHERE d.depends_on = ended AND d.outcome IS NULL)
        RETURNING t.action, t.state
    )
    SELECT count(pg_notify(channel, action)) INTO woken
    FROM (SELECT DISTINCT action FROM changed WHERE state = 'queued') AS released;
    UPDATE {schema}.taskq_dependencies SET outcome = ended_as
    WHERE depends_on = ended AND outcome IS NULL;
    PERFORM set_config('taskq.tallied', coalesce(tallied, ''), true);
END
$$;

-- A task with dependents that ended.
CREATE FUNCTION {schema}.taskq_settle_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM {schema}.taskq_settle(NEW.id, NEW.state, 'taskq_' || TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE TRIGGER taskq_tasks_settle AFTER UPDATE OF state ON {schema}.taskq_tasks
    FOR EACH ROW
    WHEN (NEW.has_dependents AND OLD.state IS DISTINCT FROM NEW.state
          AND NEW.state IN ('succeeded', 'failed', 'cancelled'))
    EXECUTE FUNCTION {schema}.taskq_settle_update();

-- A task with dependents deleted: a running one was completed (taskq ends
-- any other unfinished task as cancelled before it deletes it); one deleted
-- unfinished by other SQL counts as cancelled. A deleted dependent takes
-- its edges with it.
CREATE FUNCTION {schema}.taskq_settle_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.has_dependents AND OLD.state IN ('running', 'waiting', 'queued') THEN
        PERFORM {schema}.taskq_settle(OLD.id,
            CASE OLD.state WHEN 'running' THEN 'succeeded' ELSE 'cancelled' END,
            'taskq_' || TG_TABLE_SCHEMA);
    END IF;
    IF OLD.dependencies > 0 THEN
        DELETE FROM {schema}.taskq_dependencies WHERE task = OLD.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER taskq_tasks_settle_delete AFTER DELETE ON {schema}.taskq_tasks
    FOR EACH ROW
    WHEN (OLD.has_dependents OR OLD.dependencies > 0)
    EXECUTE FUNCTION {schema}.taskq_settle_delete();
