-- Cheaper counts. Two kinds of tasks leave no row in the kept counts and
-- are counted live by `len` and `stats` instead:
-- * running tasks, through the lease index: they are few (what workers
--   hold), and a claim then writes one count row instead of two and a
--   completion none, so the tallies take a third of the rows they took
--   while draining (the drain rates did not change measurably);
-- * tasks inserted with `counted` false, through the small index below:
--   single enqueues, which so write no count row (pgbench: 4,306 against
--   4,788 inserts/s at the medians of four alternated rounds; the raw
--   INSERT 4,900). The backend adopts them into the counts in batches when
--   many wait, so counting them live stays cheap.
--
-- The kept counts move to a new table, taskq_tallies, and taskq's
-- statements now mark their transaction with `taskq.tallied`: a taskq of
-- the previous version still running during an upgrade writes its own
-- count rows to taskq_counts, which nothing reads any more (the backend
-- empties it), and its changes are counted row by row by the triggers
-- below, as any other writer's.
ALTER TABLE {schema}.taskq_tasks ADD COLUMN counted boolean NOT NULL DEFAULT true;

CREATE INDEX taskq_tasks_uncounted ON {schema}.taskq_tasks (action, state) WHERE NOT counted;

CREATE TABLE {schema}.taskq_tallies (
    action text   NOT NULL,
    state  text   NOT NULL,
    n      bigint NOT NULL
);
CREATE INDEX taskq_tallies_action_state ON {schema}.taskq_tallies (action, state);

-- No task changes between the count below and the triggers taking over.
LOCK TABLE {schema}.taskq_tasks IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO {schema}.taskq_tallies (action, state, n)
SELECT action, state, count(*) FROM {schema}.taskq_tasks
WHERE state <> 'running'
GROUP BY action, state;

DELETE FROM {schema}.taskq_counts;

-- Changes by other writers: a counted task's old action and state leave
-- the tallies and its new ones enter them, except while it is running or
-- uncounted (counted live).
CREATE OR REPLACE FUNCTION {schema}.taskq_count_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.counted AND OLD.state <> 'running' THEN
        INSERT INTO {schema}.taskq_tallies (action, state, n) VALUES (OLD.action, OLD.state, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.counted AND NEW.state <> 'running' THEN
        INSERT INTO {schema}.taskq_tallies (action, state, n) VALUES (NEW.action, NEW.state, 1);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER taskq_tasks_count_insert ON {schema}.taskq_tasks;
DROP TRIGGER taskq_tasks_count_update ON {schema}.taskq_tasks;
DROP TRIGGER taskq_tasks_count_delete ON {schema}.taskq_tasks;

-- The conditions skip what the function would not count without calling
-- it: uncounted inserts and the completion of running tasks need no
-- `taskq.tallied`.
CREATE TRIGGER taskq_tasks_count_insert AFTER INSERT ON {schema}.taskq_tasks
    FOR EACH ROW
    WHEN (NEW.counted AND NEW.state <> 'running'
          AND current_setting('taskq.tallied', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {schema}.taskq_count_row();
CREATE TRIGGER taskq_tasks_count_update AFTER UPDATE OF action, state, counted ON {schema}.taskq_tasks
    FOR EACH ROW
    WHEN ((OLD.action, OLD.state, OLD.counted) IS DISTINCT FROM (NEW.action, NEW.state, NEW.counted)
          AND ((OLD.counted AND OLD.state <> 'running') OR (NEW.counted AND NEW.state <> 'running'))
          AND current_setting('taskq.tallied', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {schema}.taskq_count_row();
CREATE TRIGGER taskq_tasks_count_delete AFTER DELETE ON {schema}.taskq_tasks
    FOR EACH ROW
    WHEN (OLD.counted AND OLD.state <> 'running'
          AND current_setting('taskq.tallied', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {schema}.taskq_count_row();

-- TRUNCATE fires no row triggers: the tallies go with the rows.
CREATE OR REPLACE FUNCTION {schema}.taskq_counts_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {schema}.taskq_tallies;
    DELETE FROM {schema}.taskq_counts;
    RETURN NULL;
END
$$;
