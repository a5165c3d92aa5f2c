-- $1 action: what a claim could take now, including expired leases.
SELECT
    (SELECT count(*) FROM {schema}.taskq_tasks WHERE action = $1 AND state = 'queued' AND not_before <= now())
  + (SELECT count(*) FROM {schema}.taskq_tasks WHERE state = 'running' AND expires <= now() AND action = $1)
