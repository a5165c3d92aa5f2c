-- ?2 depends on ?1, which ended as ?3 (NULL: it may still run).
INSERT INTO taskq_dependencies (depends_on, task, outcome) VALUES (?1, ?2, ?3)
