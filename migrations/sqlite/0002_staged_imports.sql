-- Staged imports (issue 6): an import inserts its items in many short transactions, yet stays
-- all or nothing. Items of a project with an id above `projects.visible_max_item_id` are
-- pending (an import still running, or one that failed and is being cleaned up) and every
-- reader filters `i.id <= visible_max_item_id`; committing an import is one short statement
-- that raises the watermark. Kept column-for-column equal to ../postgres/0002_staged_imports.sql.
--
-- Why ids work as a watermark: only one import per project runs at a time (the partial unique
-- index below), imports are the only writers of items, and item ids only grow while the item
-- holding a project's watermark exists (SQLite reuses max(rowid)+1 only after the highest rows
-- are deleted, and committed items are never deleted, except with their project). If items
-- ever become deletable, make items.id AUTOINCREMENT on SQLite first.

ALTER TABLE projects ADD COLUMN visible_max_item_id INTEGER NOT NULL DEFAULT 0;
-- Existing items were committed by the old single-transaction import: all visible.
UPDATE projects SET visible_max_item_id =
    COALESCE((SELECT MAX(id) FROM items WHERE items.project_id = projects.id), 0);

CREATE TABLE imports (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    state        TEXT NOT NULL CHECK (state IN ('running', 'committed', 'failed', 'cancelled')),
    lines        INTEGER NOT NULL DEFAULT 0,
    inserted     INTEGER NOT NULL DEFAULT 0,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL, -- refreshed every ~10 s while running; stale = its server died
    finished_at  INTEGER,
    error        TEXT
);
-- One running import per project: its pending rows are exactly the project's items above the
-- watermark, and a second import would see them as duplicates.
CREATE UNIQUE INDEX imports_one_running ON imports(project_id) WHERE state = 'running';
CREATE INDEX imports_project ON imports(project_id, id);

-- Collecting the images of a refused import asks whether any item still references an image;
-- deleting an `images` row also makes SQLite check that foreign key. Both need this index.
CREATE INDEX items_image ON items(image_sha256);

-- Sessions moved to their own database file (data/sessions.db), off the single writer
-- connection. Sessions of the old table are dropped here: users sign in again once after
-- the upgrade.
DROP TABLE IF EXISTS tower_sessions;
