-- $1 action. Whether it has limits (no row: none), and its rate and the
-- tokens in its bucket now: read after a claim that took fewer tasks
-- than asked, to say when the rate admits the next.
SELECT rate_count, rate_period_us,
       least(rate_count::double precision,
             tokens + greatest(0, extract(epoch FROM now() - refilled_at)) * 1e6 * rate_count / rate_period_us)
FROM {schema}.taskq_limits WHERE action = $1
