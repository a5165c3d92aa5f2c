-- Control over tasks: priorities, unique keys, cancellation, paused
-- actions, and the record of each try. {schema} is the validated, quoted
-- schema name.
--
-- New columns (added without rewriting the table):
-- * priority: lower runs first; the ready index sorts by it.
-- * unique_key, unique_states, unique_slot: a key unique per action among
--   the tasks whose state is in unique_states (a bit per state: waiting 1,
--   queued 2, running 4, succeeded 8, failed 16, cancelled 32), and, with
--   a period, among all tasks of the period window starting at
--   unique_slot. Two unique indexes enforce it.
-- * cancel_requested: when a cancellation was asked for while the task
--   ran; its try then ends cancelled unless it completes.
-- * started_at, worker: when the newest try was claimed, and by whom (a
--   JSON object: host, pid, name).
-- * attempts: a JSON array of the newest finished tries.
--
-- The states grow (cancelled, and waiting for the dependencies to come):
-- the CHECKs of migration 0001 are replaced. An older taskq still running
-- meanwhile claims only queued tasks, so it never runs a cancelled one;
-- its claims ignore priorities and paused actions, and its fail statement
-- may queue again a task whose cancel was requested, which a claim of this
-- version then cancels without running it. Its `stats` refuses the state
-- cancelled, and its `list` and `show` call cancelled tasks failed.
ALTER TABLE {schema}.taskq_tasks
    ADD COLUMN priority smallint NOT NULL DEFAULT 0,
    ADD COLUMN unique_key text CHECK (unique_key IS NULL OR octet_length(unique_key) BETWEEN 1 AND 255),
    ADD COLUMN unique_states smallint NOT NULL DEFAULT 0,
    ADD COLUMN unique_slot timestamptz,
    ADD COLUMN cancel_requested timestamptz,
    ADD COLUMN started_at timestamptz,
    ADD COLUMN worker text,
    ADD COLUMN attempts text;

DO $$
DECLARE
    old record;
BEGIN
    FOR old IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = '{schema}.taskq_tasks'::regclass AND contype = 'c'
          AND pg_get_constraintdef(oid) LIKE '%state%'
    LOOP
        EXECUTE format('ALTER TABLE {schema}.taskq_tasks DROP CONSTRAINT %I', old.conname);
    END LOOP;
END
$$;

ALTER TABLE {schema}.taskq_tasks
    ADD CONSTRAINT taskq_tasks_state CHECK (state IN ('waiting', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    ADD CONSTRAINT taskq_tasks_running_expires CHECK ((state = 'running') = (expires IS NOT NULL)),
    ADD CONSTRAINT taskq_tasks_finished_at CHECK ((state IN ('failed', 'succeeded', 'cancelled')) = (finished_at IS NOT NULL));

-- Claims: the first ready task of an action, by priority.
DROP INDEX {schema}.taskq_tasks_ready;
CREATE INDEX taskq_tasks_ready ON {schema}.taskq_tasks (action, priority, not_before, id) WHERE state = 'queued';

-- Inspection and purging of finished tasks: those with a finish time (a
-- CHECK above), as on SQLite, where an insert tells that at less cost than
-- a list of states.
DROP INDEX {schema}.taskq_tasks_finished;
CREATE INDEX taskq_tasks_finished ON {schema}.taskq_tasks (state, finished_at) WHERE finished_at IS NOT NULL;

-- At most one task per action and key among the states each task's key
-- counts.
CREATE UNIQUE INDEX taskq_tasks_unique ON {schema}.taskq_tasks (action, unique_key)
WHERE unique_key IS NOT NULL
  AND (unique_states & CASE state WHEN 'waiting' THEN 1 WHEN 'queued' THEN 2 WHEN 'running' THEN 4
                                  WHEN 'succeeded' THEN 8 WHEN 'failed' THEN 16 ELSE 32 END::smallint) <> 0;

-- At most one task per action, key and period window, in any state.
CREATE UNIQUE INDEX taskq_tasks_unique_slot ON {schema}.taskq_tasks (action, unique_key, unique_slot)
WHERE unique_slot IS NOT NULL;

-- Paused actions: claims take nothing of them.
CREATE TABLE {schema}.taskq_paused (
    action    text        PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now()
);

-- A task's attempts ($1, a JSON array as text) with one more: try $2,
-- claimed at $3, ended now with outcome $4, error $5, by worker $6 (JSON).
-- The newest 20 are kept. Times in microseconds since the Unix epoch, as
-- the SQLite backend stores them.
CREATE FUNCTION {schema}.taskq_attempt(text, integer, timestamptz, text, text, text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN jsonb_array_length(a) > 20 THEN (a - 0)::text ELSE a::text END
    FROM (
        SELECT coalesce($1::jsonb, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
            'n', $2,
            'start', (extract(epoch FROM $3) * 1000000)::bigint,
            'end', (extract(epoch FROM now()) * 1000000)::bigint,
            'outcome', $4, 'error', $5, 'worker', $6::jsonb)) AS a
    ) AS appended
$$;
