-- Single enqueues without a count row. A task inserted with `counted`
-- false is in no row of taskq_counts: `len` and `stats` count such tasks
-- live, through the small index below, and add them to the kept counts.
-- Keeping a count row in each single enqueue cost about 10% of its rate
-- (pgbench: 4,306 against 4,788 inserts/s at the medians of four
-- alternated rounds; the raw INSERT 4,900). The backend adopts uncounted
-- tasks into taskq_counts in batches when many wait (so counting them
-- stays cheap), and no statement of taskq ever changes `counted`
-- otherwise: each counts only the tasks that are counted.
ALTER TABLE {schema}.taskq_tasks ADD COLUMN counted boolean NOT NULL DEFAULT true;

CREATE INDEX taskq_tasks_uncounted ON {schema}.taskq_tasks (action, state) WHERE NOT counted;

-- Changes by other writers: a counted task's old action and state leave
-- the counts, its new ones enter them; uncounted tasks are counted live.
CREATE OR REPLACE FUNCTION {schema}.taskq_count_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.counted THEN
        INSERT INTO {schema}.taskq_counts (action, state, n) VALUES (OLD.action, OLD.state, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.counted THEN
        INSERT INTO {schema}.taskq_counts (action, state, n) VALUES (NEW.action, NEW.state, 1);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER taskq_tasks_count_insert ON {schema}.taskq_tasks;
DROP TRIGGER taskq_tasks_count_update ON {schema}.taskq_tasks;
DROP TRIGGER taskq_tasks_count_delete ON {schema}.taskq_tasks;

-- An uncounted insert needs no `taskq.counted`: the trigger's condition
-- skips it without calling the function.
CREATE TRIGGER taskq_tasks_count_insert AFTER INSERT ON {schema}.taskq_tasks
    FOR EACH ROW
    WHEN (NEW.counted AND current_setting('taskq.counted', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {schema}.taskq_count_row();
CREATE TRIGGER taskq_tasks_count_update AFTER UPDATE OF action, state, counted ON {schema}.taskq_tasks
    FOR EACH ROW
    WHEN ((OLD.action, OLD.state, OLD.counted) IS DISTINCT FROM (NEW.action, NEW.state, NEW.counted)
          AND (OLD.counted OR NEW.counted)
          AND current_setting('taskq.counted', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {schema}.taskq_count_row();
CREATE TRIGGER taskq_tasks_count_delete AFTER DELETE ON {schema}.taskq_tasks
    FOR EACH ROW
    WHEN (OLD.counted AND current_setting('taskq.counted', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION {schema}.taskq_count_row();
