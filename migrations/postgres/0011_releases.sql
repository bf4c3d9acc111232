-- Dev-set releases (issue 9): frozen versions of a dev set. Kept column-for-column equal to
-- ../sqlite/0011_releases.sql.
--
-- A release is immutable: its items are copies (content, meta, weight, source, licence, final
-- label and its provenance, number of labels, split), not references, so labels changed, items
-- edited or deleted after the freeze never alter it. The triggers refuse any UPDATE of either
-- table; rows go away only with their project (or dev set).

CREATE TABLE releases (
    id            BIGSERIAL PRIMARY KEY,
    project_id    BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    devset_id     BIGINT NOT NULL REFERENCES devsets(id) ON DELETE CASCADE,
    version       BIGINT NOT NULL,          -- the N of vN, 1, 2, ... per dev set
    lineage       TEXT NOT NULL,             -- JSON: plan, aggregation, agreement, splits, overrides
    content_hash  TEXT NOT NULL,             -- SHA-256 (hex) of the canonical serialisation
    item_count    BIGINT NOT NULL,
    created_by    BIGINT REFERENCES users(id),
    created_at    BIGINT NOT NULL,
    UNIQUE (devset_id, version)
);
CREATE INDEX releases_project ON releases(project_id, id);

-- No foreign key to items: a release outlives the item rows it was frozen from.
CREATE TABLE release_items (
    release_id    BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    position      BIGINT NOT NULL,          -- canonical order (the hash's order)
    item_id       BIGINT NOT NULL,          -- the project item it was frozen from
    external_id   TEXT,
    kind          TEXT NOT NULL,
    text          TEXT,
    image_sha256  TEXT,
    meta          TEXT NOT NULL,             -- JSON object
    weight        DOUBLE PRECISION NOT NULL,
    source        TEXT,
    license       TEXT,
    labels        TEXT NOT NULL,             -- JSON array: the final label set
    provenance    TEXT NOT NULL,             -- JSON: {"source": ..., "method", "posterior", ...}
    n_labels      BIGINT NOT NULL,
    split         TEXT NOT NULL,             -- 'dev', 'test' or 'train_dev'
    PRIMARY KEY (release_id, position)
);
CREATE INDEX release_items_item ON release_items(release_id, item_id);

CREATE FUNCTION release_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'a release is immutable'; END $$;
CREATE TRIGGER releases_immutable BEFORE UPDATE ON releases
FOR EACH ROW EXECUTE FUNCTION release_immutable();
CREATE TRIGGER release_items_immutable BEFORE UPDATE ON release_items
FOR EACH ROW EXECUTE FUNCTION release_immutable();
