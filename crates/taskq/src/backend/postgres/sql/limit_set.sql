-- $1 action, $2 concurrency, $3 rate count, $4 rate period
-- (microseconds), $5 per-key limit; NULL: no such limit. A new rate
-- starts with a full bucket; a changed one with no more tokens than the
-- old bucket held (at most its new size).
INSERT INTO {schema}.taskq_limits AS l (action, concurrency, rate_count, rate_period_us, per_key, tokens)
VALUES ($1::text, $2::integer, $3::integer, $4::bigint, $5::integer, coalesce($3::integer, 0))
ON CONFLICT (action) DO UPDATE SET
    concurrency = EXCLUDED.concurrency,
    rate_count = EXCLUDED.rate_count,
    rate_period_us = EXCLUDED.rate_period_us,
    per_key = EXCLUDED.per_key,
    tokens = CASE
        WHEN EXCLUDED.rate_count IS NULL THEN 0
        WHEN l.rate_count IS NULL THEN EXCLUDED.rate_count
        WHEN l.rate_count = EXCLUDED.rate_count AND l.rate_period_us = EXCLUDED.rate_period_us THEN l.tokens
        ELSE least(EXCLUDED.rate_count::double precision, l.tokens + greatest(0, extract(epoch FROM now() - l.refilled_at)) * 1e6 * l.rate_count / l.rate_period_us)
    END,
    refilled_at = CASE
        WHEN l.rate_count = EXCLUDED.rate_count AND l.rate_period_us = EXCLUDED.rate_period_us THEN l.refilled_at
        ELSE now()
    END,
    updated_at = now()
