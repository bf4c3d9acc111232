-- Auto-accept and the disagreement-with-pre-labels queue (issue 10). Kept column-for-column
-- equal to ../sqlite/0013_prelabel_auto_accept.sql (see there for the why).

CREATE TABLE prelabel_auto_accept (
    source_id         BIGINT NOT NULL REFERENCES prelabel_sources(id) ON DELETE CASCADE,
    labels            TEXT NOT NULL,
    project_id        BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    min_score         DOUBLE PRECISION NOT NULL,
    target_precision  DOUBLE PRECISION NOT NULL,
    enabled_by        BIGINT REFERENCES users(id),
    enabled_at        BIGINT NOT NULL,
    PRIMARY KEY (source_id, labels)
);
CREATE INDEX prelabel_auto_accept_project ON prelabel_auto_accept(project_id);

CREATE TABLE prelabel_accepted (
    item_id     BIGINT PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    source_id   BIGINT NOT NULL REFERENCES prelabel_sources(id) ON DELETE CASCADE,
    labels      TEXT NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    accepted_at BIGINT NOT NULL
);
CREATE INDEX prelabel_accepted_project ON prelabel_accepted(project_id, source_id);

CREATE FUNCTION prelabel_accepted_revoke() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM prelabel_accepted WHERE item_id = NEW.item_id;
    RETURN NULL;
END $$;
CREATE TRIGGER prelabel_accepted_devset AFTER INSERT ON devset_members
FOR EACH ROW EXECUTE FUNCTION prelabel_accepted_revoke();
CREATE TRIGGER prelabel_accepted_release AFTER INSERT ON release_items
FOR EACH ROW EXECUTE FUNCTION prelabel_accepted_revoke();

ALTER TABLE prelabel_settings ADD COLUMN disagreement_min_score DOUBLE PRECISION NOT NULL DEFAULT 0.9;
