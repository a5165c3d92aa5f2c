-- $1 action: what a claim could take now, including expired leases; none
-- while the action is paused. All queued tasks (the tallies and the
-- uncounted tasks) less those not yet due, plus expired leases with tries
-- left (one that expired on its last try fails instead of running). The
-- tasks not yet due are counted one priority at a time (`levels`, one
-- index seek each), each a range of the ready index: short unless many
-- tasks wait for a time.
WITH RECURSIVE levels (p) AS (
    (SELECT priority FROM {schema}.taskq_tasks
     WHERE action = $1 AND state = 'queued' ORDER BY priority LIMIT 1)
    UNION ALL
    SELECT (SELECT priority FROM {schema}.taskq_tasks
            WHERE action = $1 AND state = 'queued' AND priority > levels.p
            ORDER BY priority LIMIT 1)
    FROM levels WHERE levels.p IS NOT NULL
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM {schema}.taskq_paused WHERE action = $1) THEN 0::bigint ELSE
    coalesce((SELECT sum(n) FROM {schema}.taskq_tallies WHERE action = $1 AND state = 'queued'), 0)::bigint
  + (SELECT count(*) FROM {schema}.taskq_tasks WHERE action = $1 AND state = 'queued' AND NOT counted)
  - (SELECT coalesce(sum((SELECT count(*) FROM {schema}.taskq_tasks
                          WHERE action = $1 AND state = 'queued' AND priority = levels.p AND not_before > now())), 0)::bigint
     FROM levels WHERE levels.p IS NOT NULL)
  + (SELECT count(*) FROM {schema}.taskq_tasks WHERE state = 'running' AND expires <= now() AND action = $1
     AND (max_tries = -1 OR tries < max_tries))
END
