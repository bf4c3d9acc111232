-- A project's done count in shards (issue 11). Every completing submission added 1 to
-- projects.done_count, so on PostgreSQL concurrent submissions queued on the project's row lock,
-- each holding it until its commit: two instances with 50 labelers spent most of their time
-- there (docs/bench.md, session 8). A completing submission now adds 1 to one of 64 shards,
-- chosen by the item's id; a project's done count is projects.done_count plus its shards' sum.
-- Kept equal to ../postgres/0019_project_done_shards.sql.
CREATE TABLE project_done_shards (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    shard      INTEGER NOT NULL,
    done       INTEGER NOT NULL,
    PRIMARY KEY (project_id, shard)
);
