-- $2 depends on each of $1, which ended as the matching $3 (NULL: it may
-- still run).
INSERT INTO {schema}.taskq_dependencies (depends_on, task, outcome)
SELECT d, $2::bigint, o FROM unnest($1::bigint[], $3::text[]) AS u (d, o)
