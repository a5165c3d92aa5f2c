-- The task table. {schema} is the validated, quoted schema name. Times
-- come from the database clock (now()); durations are microseconds.
CREATE TABLE {schema}.taskq_tasks (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action      text        NOT NULL CHECK (octet_length(action) BETWEEN 1 AND 255),
    payload     bytea       NOT NULL,
    state       text        NOT NULL CHECK (state IN ('queued', 'running', 'failed', 'succeeded')),
    not_before  timestamptz NOT NULL,
    tries       integer     NOT NULL DEFAULT 0 CHECK (tries >= 0),
    max_tries   integer     NOT NULL CHECK (max_tries = -1 OR max_tries >= 1),
    timeout_us  bigint      NOT NULL CHECK (timeout_us > 0),
    lease_token bigint      NOT NULL DEFAULT 0,
    expires     timestamptz,
    parent      bigint,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK ((state = 'running') = (expires IS NOT NULL)),
    CHECK ((state IN ('failed', 'succeeded')) = (finished_at IS NOT NULL))
);

-- Claims: the oldest ready task of an action.
CREATE INDEX taskq_tasks_ready ON {schema}.taskq_tasks (action, not_before, id) WHERE state = 'queued';

-- Lease expiry.
CREATE INDEX taskq_tasks_leased ON {schema}.taskq_tasks (expires) WHERE state = 'running';

-- Inspection and purging of finished tasks.
CREATE INDEX taskq_tasks_finished ON {schema}.taskq_tasks (state, finished_at) WHERE state IN ('failed', 'succeeded');
