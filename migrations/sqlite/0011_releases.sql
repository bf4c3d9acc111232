-- Dev-set releases (issue 9): frozen versions of a dev set. Kept column-for-column equal to
-- ../postgres/0011_releases.sql.
--
-- A release is immutable: its items are copies (content, meta, weight, source, licence, final
-- label and its provenance, number of labels, split), not references, so labels changed, items
-- edited or deleted after the freeze never alter it. The triggers refuse any UPDATE of either
-- table; rows go away only with their project (or dev set).

CREATE TABLE releases (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    devset_id     INTEGER NOT NULL REFERENCES devsets(id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,          -- the N of vN, 1, 2, ... per dev set
    lineage       TEXT NOT NULL,             -- JSON: plan, aggregation, agreement, splits, overrides
    content_hash  TEXT NOT NULL,             -- SHA-256 (hex) of the canonical serialisation
    item_count    INTEGER NOT NULL,
    created_by    INTEGER REFERENCES users(id),
    created_at    INTEGER NOT NULL,
    UNIQUE (devset_id, version)
);
CREATE INDEX releases_project ON releases(project_id, id);

-- No foreign key to items: a release outlives the item rows it was frozen from.
CREATE TABLE release_items (
    release_id    INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,          -- canonical order (the hash's order)
    item_id       INTEGER NOT NULL,          -- the project item it was frozen from
    external_id   TEXT,
    kind          TEXT NOT NULL,
    text          TEXT,
    image_sha256  TEXT,
    meta          TEXT NOT NULL,             -- JSON object
    weight        REAL NOT NULL,
    source        TEXT,
    license       TEXT,
    labels        TEXT NOT NULL,             -- JSON array: the final label set
    provenance    TEXT NOT NULL,             -- JSON: {"source": ..., "method", "posterior", ...}
    n_labels      INTEGER NOT NULL,
    split         TEXT NOT NULL,             -- 'dev', 'test' or 'train_dev'
    PRIMARY KEY (release_id, position)
);
CREATE INDEX release_items_item ON release_items(release_id, item_id);

CREATE TRIGGER releases_immutable BEFORE UPDATE ON releases
BEGIN SELECT RAISE(ABORT, 'a release is immutable'); END;
CREATE TRIGGER release_items_immutable BEFORE UPDATE ON release_items
BEGIN SELECT RAISE(ABORT, 'a release is immutable'); END;
