-- Periodic tasks: one row per schedule, declared by name.
--
-- A schedule ticks at the times of a cron expression read in a time zone
-- (cron and zone set), or every every_us microseconds (every_us set).
-- next_at is its next tick (microseconds since the Unix epoch); a worker
-- that enqueues a tick moves next_at forward in the transaction that
-- inserts the tick's task, only if next_at is still the time it read, so
-- each tick is enqueued once however many workers look. last_at and
-- last_task are the last tick enqueued and its task. options is the
-- tick's task options as JSON; missed ('run-once' or 'skip') and grace_us
-- say what becomes of ticks no worker enqueued in time.
CREATE TABLE {schema}.taskq_schedules (
    name       text    NOT NULL PRIMARY KEY,
    action     text    NOT NULL,
    payload    bytea   NOT NULL,
    options    text    NOT NULL,
    cron       text,
    zone       text,
    every_us   bigint,
    missed     text    NOT NULL,
    grace_us   bigint  NOT NULL,
    paused     boolean NOT NULL DEFAULT false,
    next_at    bigint  NOT NULL,
    last_at    bigint,
    last_task  bigint,
    updated_at bigint  NOT NULL,
    CHECK ((cron IS NOT NULL AND zone IS NOT NULL) <> (every_us IS NOT NULL))
);
