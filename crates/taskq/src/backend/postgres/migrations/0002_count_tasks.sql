-- Task counts per action and state, so that len and stats read a few rows
-- instead of counting the task table. Every statement of taskq that changes
-- tasks appends its changes per action and state to taskq_counts in that
-- same statement: appends do not contend, where one counter row per state
-- would serialize every claim, and a statement trigger with transition
-- tables cost more than the insert it counted (0.93x -> 0.65x of the raw
-- single-INSERT rate). The backend folds the rows into one per action and
-- state every second; readers add them up.
CREATE TABLE {schema}.taskq_counts (
    action text   NOT NULL,
    state  text   NOT NULL,
    n      bigint NOT NULL
);
CREATE INDEX taskq_counts_action_state ON {schema}.taskq_counts (action, state);

-- No task changes between the count below and the triggers taking over.
LOCK TABLE {schema}.taskq_tasks IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO {schema}.taskq_counts (action, state, n)
SELECT action, state, count(*) FROM {schema}.taskq_tasks GROUP BY action, state;

-- Changes by other writers (an older taskq during a rolling upgrade, an
-- operator's SQL) are counted row by row. taskq's own statements set
-- `taskq.counted` for their transaction and count in bulk themselves, so
-- changes made by hand later in such a transaction are not counted.
CREATE FUNCTION {schema}.taskq_count_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO {schema}.taskq_counts (action, state, n) VALUES (OLD.action, OLD.state, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO {schema}.taskq_counts (action, state, n) VALUES (NEW.action, NEW.state, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER taskq_tasks_count_insert AFTER INSERT ON {schema}.taskq_tasks
    FOR EACH ROW
    WHEN (current_setting('taskq.counted', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {schema}.taskq_count_row();
CREATE TRIGGER taskq_tasks_count_update AFTER UPDATE OF action, state ON {schema}.taskq_tasks
    FOR EACH ROW
    WHEN ((OLD.action, OLD.state) IS DISTINCT FROM (NEW.action, NEW.state)
          AND current_setting('taskq.counted', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {schema}.taskq_count_row();
CREATE TRIGGER taskq_tasks_count_delete AFTER DELETE ON {schema}.taskq_tasks
    FOR EACH ROW
    WHEN (current_setting('taskq.counted', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {schema}.taskq_count_row();

-- TRUNCATE fires no row triggers: the counts go with the rows.
CREATE FUNCTION {schema}.taskq_counts_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {schema}.taskq_counts;
    RETURN NULL;
END
$$;

CREATE TRIGGER taskq_tasks_counts_clear AFTER TRUNCATE ON {schema}.taskq_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.taskq_counts_clear();
