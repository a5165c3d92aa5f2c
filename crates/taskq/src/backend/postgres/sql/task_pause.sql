-- $1 action. Changes nothing for a paused action.
INSERT INTO {schema}.taskq_paused (action) VALUES ($1) ON CONFLICT DO NOTHING
