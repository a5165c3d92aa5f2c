-- Limits per action: at most `concurrency` tasks running at once, at most
-- `rate_count` claims per `rate_period_us` microseconds (a token bucket:
-- `tokens` as of `refilled_at`, refilled evenly, at most `rate_count`),
-- and at most `per_key` tasks running per concurrency key. NULL: no such
-- limit. A claim of a limited action locks its row, so claims of one
-- limited action take turns, and counts the running tasks under a live
-- lease in a statement of its own after the lock (it sees every claim
-- committed before).
CREATE TABLE {schema}.taskq_limits (
    action         text             NOT NULL PRIMARY KEY,
    concurrency    integer,
    rate_count     integer,
    rate_period_us bigint,
    per_key        integer,
    tokens         double precision NOT NULL DEFAULT 0,
    refilled_at    timestamptz      NOT NULL DEFAULT now(),
    updated_at     timestamptz      NOT NULL DEFAULT now(),
    CHECK ((rate_count IS NULL) = (rate_period_us IS NULL))
);

-- The key a per-key limit counts a task under.
ALTER TABLE {schema}.taskq_tasks ADD COLUMN concurrency_key text;

-- The running tasks by action and lease end, with their keys: a limited
-- claim counts an action's live leases (and those of each key) from the
-- index alone, and a claim's requeue of expired leases reads its action's
-- only.
DROP INDEX {schema}.taskq_tasks_leased;
CREATE INDEX taskq_tasks_leased ON {schema}.taskq_tasks (action, expires) INCLUDE (concurrency_key)
    WHERE state = 'running';

-- The claim of a limited action (see task_claim_limited.sql, which calls
-- it, for the parameters): locks the action's limits row, so that the
-- claims of one limited action take turns; then, each statement seeing
-- every claim committed before the lock was granted, counts the running
-- tasks under a live lease and the tokens in the bucket, and claims what
-- they admit, first by priority, then not-before, then id, passing over
-- the tasks whose concurrency key is at its limit. Nothing while the
-- action is paused or has no limits row.
CREATE FUNCTION {schema}.taskq_claim_limited(p_action text, p_limit integer, p_worker text)
RETURNS SETOF {schema}.taskq_tasks
LANGUAGE plpgsql AS $$
DECLARE
    lim {schema}.taskq_limits;
    v_now timestamptz;
    v_n bigint := p_limit;
    v_tokens double precision;
BEGIN
    SELECT * INTO lim FROM {schema}.taskq_limits WHERE action = p_action FOR UPDATE;
    IF NOT FOUND OR EXISTS (SELECT 1 FROM {schema}.taskq_paused WHERE action = p_action) THEN
        RETURN;
    END IF;
    v_now := clock_timestamp();
    IF lim.concurrency IS NOT NULL THEN
        v_n := least(v_n, lim.concurrency - (
            SELECT count(*) FROM {schema}.taskq_tasks
            WHERE action = p_action AND state = 'running' AND expires > v_now));
    END IF;
    IF lim.rate_count IS NOT NULL THEN
        v_tokens := least(lim.rate_count::double precision,
            lim.tokens + greatest(0, extract(epoch FROM v_now - lim.refilled_at)) * 1e6
                * lim.rate_count / lim.rate_period_us);
        v_n := least(v_n, floor(v_tokens)::bigint);
    END IF;
    IF v_n <= 0 THEN
        RETURN;
    END IF;
    -- A claim lost in a server crash only means the task runs again; the
    -- claimed tasks leave the queued tally (see task_claim.sql).
    PERFORM set_config('synchronous_commit', 'off', true), set_config('taskq.tallied', 'on', true);
    RETURN QUERY
    WITH RECURSIVE busy AS (
        SELECT concurrency_key AS key, count(*) AS n FROM {schema}.taskq_tasks
        WHERE lim.per_key IS NOT NULL AND action = p_action AND state = 'running'
          AND expires > v_now AND concurrency_key IS NOT NULL
        GROUP BY concurrency_key
    ), levels (p) AS (
        (SELECT priority FROM {schema}.taskq_tasks
         WHERE action = p_action AND state = 'queued' ORDER BY priority LIMIT 1)
        UNION ALL
        SELECT (SELECT priority FROM {schema}.taskq_tasks
                WHERE action = p_action AND state = 'queued' AND priority > levels.p
                ORDER BY priority LIMIT 1)
        FROM levels WHERE levels.p IS NOT NULL
    ), ready AS (
        SELECT levels.p AS priority, r.id, r.not_before, r.concurrency_key
        FROM levels CROSS JOIN LATERAL (
            SELECT t.id, t.not_before, t.concurrency_key FROM {schema}.taskq_tasks AS t
            WHERE t.action = p_action AND t.state = 'queued' AND t.priority = levels.p
              AND t.not_before <= v_now
              AND (lim.per_key IS NULL OR t.concurrency_key IS NULL OR NOT EXISTS (
                  SELECT 1 FROM busy WHERE busy.key = t.concurrency_key AND busy.n >= lim.per_key))
            ORDER BY t.not_before, t.id
            LIMIT v_n * CASE WHEN lim.per_key IS NULL THEN 1 ELSE 4 END
            FOR UPDATE SKIP LOCKED
        ) AS r
        WHERE levels.p IS NOT NULL
    ), ranked AS (
        SELECT ready.*, row_number() OVER (
            PARTITION BY ready.concurrency_key ORDER BY ready.priority, ready.not_before, ready.id) AS rn
        FROM ready
    ), picked AS (
        SELECT ranked.id FROM ranked LEFT JOIN busy ON busy.key = ranked.concurrency_key
        WHERE lim.per_key IS NULL OR ranked.concurrency_key IS NULL
           OR coalesce(busy.n, 0) + ranked.rn <= lim.per_key
        ORDER BY ranked.priority, ranked.not_before, ranked.id
        LIMIT v_n
    ), claimed AS (
        UPDATE {schema}.taskq_tasks AS t
        SET state = 'running', tries = t.tries + 1,
            lease_token = t.lease_token + 1 + floor(random() * 4294967296)::bigint,
            expires = v_now + t.timeout_us * interval '1 microsecond',
            started_at = v_now, worker = p_worker
        WHERE t.id = ANY (ARRAY(SELECT picked.id FROM picked))
        RETURNING t.*
    ), counted AS (
        INSERT INTO {schema}.taskq_tallies (action, state, n)
        SELECT claimed.action, 'queued', -count(*) FROM claimed WHERE claimed.counted GROUP BY claimed.action
    ), spent AS (
        UPDATE {schema}.taskq_limits AS l
        SET tokens = v_tokens - (SELECT count(*) FROM claimed), refilled_at = v_now
        WHERE l.action = p_action AND v_tokens IS NOT NULL
    )
    SELECT * FROM claimed;
END
$$;
