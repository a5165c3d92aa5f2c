-- Takes ticks: $1 the schedule's name, $2 the next tick the worker read,
-- $3 the next tick after those it enqueues. Changes nothing (and the
-- caller inserts nothing) if another worker took them first, or the
-- schedule was paused, declared anew or removed since. A second worker
-- taking the same ticks waits for the first one's transaction, then finds
-- next_at moved.
UPDATE {schema}.taskq_schedules
SET next_at = $3
WHERE name = $1 AND next_at = $2 AND NOT paused
