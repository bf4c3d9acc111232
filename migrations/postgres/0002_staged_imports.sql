-- Staged imports (issue 6): an import inserts its items in many short transactions, yet stays
-- all or nothing. Items of a project with an id above `projects.visible_max_item_id` are
-- pending (an import still running, or one that failed and is being cleaned up) and every
-- reader filters `i.id <= visible_max_item_id`; committing an import is one short statement
-- that raises the watermark. Kept column-for-column equal to ../sqlite/0002_staged_imports.sql
-- (which says why item ids work as a watermark). Sessions stay in this database on PostgreSQL.

ALTER TABLE projects ADD COLUMN visible_max_item_id BIGINT NOT NULL DEFAULT 0;
UPDATE projects SET visible_max_item_id =
    COALESCE((SELECT MAX(id) FROM items WHERE items.project_id = projects.id), 0);

CREATE TABLE imports (
    id           BIGSERIAL PRIMARY KEY,
    project_id   BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    state        TEXT NOT NULL CHECK (state IN ('running', 'committed', 'failed', 'cancelled')),
    lines        BIGINT NOT NULL DEFAULT 0,
    inserted     BIGINT NOT NULL DEFAULT 0,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    finished_at  BIGINT,
    error        TEXT
);
CREATE UNIQUE INDEX imports_one_running ON imports(project_id) WHERE state = 'running';
CREATE INDEX imports_project ON imports(project_id, id);

CREATE INDEX items_image ON items(image_sha256);
