-- ?1 action, ?2 concurrency, ?3 rate count, ?4 rate period
-- (microseconds), ?5 per-key limit (NULL: no such limit), ?6 now, ?7 the
-- tokens a changed rate starts with (limits.rs works them out from the
-- old bucket).
INSERT INTO taskq_limits (action, concurrency, rate_count, rate_period_us, per_key, tokens, refilled_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?7, ?6, ?6)
ON CONFLICT (action) DO UPDATE SET
    concurrency = excluded.concurrency,
    rate_count = excluded.rate_count,
    rate_period_us = excluded.rate_period_us,
    per_key = excluded.per_key,
    tokens = CASE WHEN rate_count IS excluded.rate_count AND rate_period_us IS excluded.rate_period_us
                  THEN tokens ELSE excluded.tokens END,
    refilled_at = CASE WHEN rate_count IS excluded.rate_count AND rate_period_us IS excluded.rate_period_us
                       THEN refilled_at ELSE excluded.refilled_at END,
    updated_at = excluded.updated_at
