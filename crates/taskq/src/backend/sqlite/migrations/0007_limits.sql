-- Limits per action: at most `concurrency` tasks running at once, at most
-- `rate_count` claims per `rate_period_us` microseconds (a token bucket:
-- `tokens` as of `refilled_at`, microseconds since the Unix epoch,
-- refilled evenly, at most `rate_count`), and at most `per_key` tasks
-- running per concurrency key. NULL: no such limit. Claims are made under
-- the write lock, so a claim's count of running tasks is exact.
CREATE TABLE taskq_limits (
    action         TEXT    NOT NULL PRIMARY KEY,
    concurrency    INTEGER,
    rate_count     INTEGER,
    rate_period_us INTEGER,
    per_key        INTEGER,
    tokens         REAL    NOT NULL DEFAULT 0,
    refilled_at    INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    CHECK ((rate_count IS NULL) = (rate_period_us IS NULL))
) STRICT, WITHOUT ROWID;

-- The key a per-key limit counts a task under.
ALTER TABLE taskq_tasks ADD COLUMN concurrency_key TEXT;

-- The running tasks by action and lease end, with their keys: a limited
-- claim counts an action's live leases (and those of each key) from the
-- index alone, and a claim's requeue of expired leases reads its action's
-- only.
DROP INDEX taskq_tasks_leased;
CREATE INDEX taskq_tasks_leased ON taskq_tasks (action, expires, concurrency_key) WHERE state = 'running';
