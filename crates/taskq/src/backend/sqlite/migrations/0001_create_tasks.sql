-- The task table. Times are microseconds since the Unix epoch (UTC);
-- durations are microseconds. The CHECKs repeat the lifecycle's invariants.
CREATE TABLE taskq_tasks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    action      TEXT    NOT NULL CHECK (length(action) BETWEEN 1 AND 255),
    payload     BLOB    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'failed', 'succeeded')),
    not_before  INTEGER NOT NULL,
    tries       INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0),
    max_tries   INTEGER NOT NULL CHECK (max_tries = -1 OR max_tries >= 1),
    timeout_us  INTEGER NOT NULL CHECK (timeout_us > 0),
    lease_token INTEGER NOT NULL DEFAULT 0,
    expires     INTEGER,
    parent      INTEGER,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER,
    CHECK ((state = 'running') = (expires IS NOT NULL)),
    CHECK ((state IN ('failed', 'succeeded')) = (finished_at IS NOT NULL))
) STRICT;

-- Claims: the oldest ready task of an action.
CREATE INDEX taskq_tasks_ready ON taskq_tasks (action, not_before, id) WHERE state = 'queued';

-- Lease expiry.
CREATE INDEX taskq_tasks_leased ON taskq_tasks (expires) WHERE state = 'running';

-- Inspection and purging of finished tasks.
CREATE INDEX taskq_tasks_finished ON taskq_tasks (state, finished_at) WHERE state IN ('failed', 'succeeded');
