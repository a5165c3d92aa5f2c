-- $1 action: what a claim could take now, including expired leases. All
-- queued tasks (the tallies and the uncounted tasks) less those not yet
-- due, plus expired leases with tries left (one that expired on its last
-- try fails instead of running): the index ranges are short unless many
-- tasks wait for a time.
SELECT
    coalesce((SELECT sum(n) FROM {schema}.taskq_tallies WHERE action = $1 AND state = 'queued'), 0)::bigint
  + (SELECT count(*) FROM {schema}.taskq_tasks WHERE action = $1 AND state = 'queued' AND NOT counted)
  - (SELECT count(*) FROM {schema}.taskq_tasks WHERE action = $1 AND state = 'queued' AND not_before > now())
  + (SELECT count(*) FROM {schema}.taskq_tasks WHERE state = 'running' AND expires <= now() AND action = $1
     AND (max_tries = -1 OR tries < max_tries))
