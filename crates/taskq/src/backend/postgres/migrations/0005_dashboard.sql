-- What the dashboard and `list` read: the follow-ups of a task, and the
-- tasks each action finished per minute.
--
-- taskq_tasks_parent holds only tasks that have a parent, so tasks
-- enqueued without one cost it nothing; `list` reads a task's follow-ups
-- through it. Building it reads the table once.
--
-- taskq_throughput: per minute (Unix seconds of its start) and action,
-- the tries workers ended completed, retried and failed for good. Each
-- worker adds what it counted every few seconds, in one statement; rows
-- older than two days are removed by the same writes.
CREATE INDEX taskq_tasks_parent ON {schema}.taskq_tasks (parent) WHERE parent IS NOT NULL;

CREATE TABLE {schema}.taskq_throughput (
    minute    bigint NOT NULL,
    action    text   NOT NULL,
    completed bigint NOT NULL DEFAULT 0,
    retried   bigint NOT NULL DEFAULT 0,
    failed    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, action)
);
