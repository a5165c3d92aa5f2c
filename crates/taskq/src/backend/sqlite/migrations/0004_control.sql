-- Control over tasks: priorities, unique keys, cancellation, paused
-- actions, and the record of each try.
--
-- SQLite cannot change a CHECK, and the states grow (cancelled, and
-- waiting for the dependencies to come), so the task table is built anew
-- and its rows copied, ids and the id sequence included (ids are never
-- reused, which the count mark of migration 0003 relies on).
--
-- New columns:
-- * priority: lower runs first; the ready index sorts by it.
-- * unique_key, unique_states, unique_slot: a key unique per action among
--   the tasks whose state is in unique_states (a bit per state: waiting 1,
--   queued 2, running 4, succeeded 8, failed 16, cancelled 32), and, with
--   a period, among all tasks of the period window starting at unique_slot
--   (microseconds). Two unique indexes enforce it.
-- * cancel_requested: when a cancellation was asked for while the task
--   ran; its try then ends cancelled unless it completes.
-- * started_at, worker: when the newest try was claimed, and by whom (a
--   JSON object: host, pid, name).
-- * attempts: a JSON array of the newest finished tries.
--
-- The CHECKs compare the state with each name in turn: an insert checks
-- them faster than an IN list, which SQLite evaluates through a table of
-- its own (inserts into a table with the IN lists ran at about 100,000
-- rows/s, with the comparisons at about 240,000, CPU time, one
-- transaction).
--
-- An older taskq still running meanwhile claims only queued tasks, so it
-- never runs a cancelled one; its claims ignore priorities and paused
-- actions, and its fail statement may queue again a task whose cancel was
-- requested, which a claim of this version then cancels without running
-- it. Its `stats` and `list` refuse the state cancelled.
CREATE TABLE taskq_tasks_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    action           TEXT    NOT NULL CHECK (length(action) BETWEEN 1 AND 255),
    payload          BLOB    NOT NULL,
    state            TEXT    NOT NULL CHECK (state = 'queued' OR state = 'running' OR state = 'succeeded'
                                          OR state = 'failed' OR state = 'cancelled' OR state = 'waiting'),
    not_before       INTEGER NOT NULL,
    tries            INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0),
    max_tries        INTEGER NOT NULL CHECK (max_tries = -1 OR max_tries >= 1),
    timeout_us       INTEGER NOT NULL CHECK (timeout_us > 0),
    lease_token      INTEGER NOT NULL DEFAULT 0,
    expires          INTEGER,
    parent           INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    priority         INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN -32768 AND 32767),
    unique_key       TEXT    CHECK (unique_key IS NULL OR length(unique_key) BETWEEN 1 AND 255),
    unique_states    INTEGER NOT NULL DEFAULT 0,
    unique_slot      INTEGER,
    cancel_requested INTEGER,
    started_at       INTEGER,
    worker           TEXT,
    attempts         TEXT,
    CHECK ((state = 'running') = (expires IS NOT NULL)),
    CHECK ((state = 'failed' OR state = 'succeeded' OR state = 'cancelled') = (finished_at IS NOT NULL))
) STRICT;

INSERT INTO taskq_tasks_new (id, action, payload, state, not_before, tries, max_tries, timeout_us, lease_token, expires, parent, last_error, created_at, finished_at)
SELECT id, action, payload, state, not_before, tries, max_tries, timeout_us, lease_token, expires, parent, last_error, created_at, finished_at
FROM taskq_tasks;

DELETE FROM sqlite_sequence WHERE name = 'taskq_tasks_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'taskq_tasks_new', seq FROM sqlite_sequence WHERE name = 'taskq_tasks';

DROP TABLE taskq_tasks;
ALTER TABLE taskq_tasks_new RENAME TO taskq_tasks;

-- Claims: the first ready task of an action, by priority.
CREATE INDEX taskq_tasks_ready ON taskq_tasks (action, priority, not_before, id) WHERE state = 'queued';

-- Lease expiry.
CREATE INDEX taskq_tasks_leased ON taskq_tasks (expires) WHERE state = 'running';

-- Inspection and purging of finished tasks: those with a finish time (the
-- CHECK above), which an insert tells at less cost than a list of states.
CREATE INDEX taskq_tasks_finished ON taskq_tasks (state, finished_at) WHERE finished_at IS NOT NULL;

-- At most one task per action and key among the states each task's key
-- counts.
CREATE UNIQUE INDEX taskq_tasks_unique ON taskq_tasks (action, unique_key)
WHERE unique_key IS NOT NULL
  AND (unique_states & CASE state WHEN 'waiting' THEN 1 WHEN 'queued' THEN 2 WHEN 'running' THEN 4
                                  WHEN 'succeeded' THEN 8 WHEN 'failed' THEN 16 ELSE 32 END) <> 0;

-- At most one task per action, key and period window, in any state.
CREATE UNIQUE INDEX taskq_tasks_unique_slot ON taskq_tasks (action, unique_key, unique_slot)
WHERE unique_slot IS NOT NULL;

-- The counting triggers of migration 0003, dropped with the old table.
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

-- Paused actions: claims take nothing of them.
CREATE TABLE taskq_paused (
    action    TEXT    PRIMARY KEY,
    paused_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
