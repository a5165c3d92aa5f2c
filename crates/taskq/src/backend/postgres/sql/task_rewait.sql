-- $1, a cancelled dependent, waits again with its tries reset: its edges
-- to dependencies that may run again (queued again meanwhile) open, and it
-- waits for every open edge. Its change is counted by the counting
-- triggers (`taskq.tallied` is off).
WITH opened AS (
    UPDATE {schema}.taskq_dependencies SET outcome = NULL
    WHERE task = $1::bigint AND outcome IS NOT NULL
      AND depends_on IN (SELECT id FROM {schema}.taskq_tasks WHERE state IN ('waiting', 'queued', 'running'))
      AND (SELECT set_config('taskq.tallied', '', true)) = ''
    RETURNING task
)
UPDATE {schema}.taskq_tasks AS t
SET state = 'waiting', tries = 0, finished_at = NULL, cancel_requested = NULL,
    waiting_on = (SELECT count(*) FROM {schema}.taskq_dependencies AS o
                  LEFT JOIN {schema}.taskq_tasks AS other ON other.id = o.depends_on
                  WHERE o.task = $1::bigint
                    AND (o.outcome IS NULL OR other.state IN ('waiting', 'queued', 'running')))
WHERE t.id = $1::bigint AND t.state = 'cancelled'
  AND (SELECT count(*) FROM opened) >= 0
