-- ?1 action, ?2 now. Changes nothing for a paused action.
INSERT INTO taskq_paused (action, paused_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING
