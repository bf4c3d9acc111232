-- Auto-accept and the disagreement-with-pre-labels queue (issue 10). Kept column-for-column
-- equal to ../postgres/0013_prelabel_auto_accept.sql.
--
-- Auto-accept is switched on per (source, proposed labels) by a lead, at the threshold the
-- audits justify at that moment (`prelabels::threshold`); the threshold is kept with the switch
-- so that what was accepted does not move while audits accumulate (switching on again takes the
-- current threshold). The items it accepts are materialised in `prelabel_accepted`, one row
-- per item, rebuilt as a whole by `store::prelabels::apply_auto_accept` whenever a switch or a
-- source's pre-labels change: the labeling stream leaves these items out, and an item's final
-- label is `auto:<source>` only while it has no human final label (`review::final_label`).

CREATE TABLE prelabel_auto_accept (
    source_id         INTEGER NOT NULL REFERENCES prelabel_sources(id) ON DELETE CASCADE,
    labels            TEXT NOT NULL,     -- JSON array, as in prelabels.labels
    project_id        INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    min_score         REAL NOT NULL,     -- pre-labels scored at least this are accepted
    target_precision  REAL NOT NULL,     -- the project's target when it was switched on
    enabled_by        INTEGER REFERENCES users(id),
    enabled_at        INTEGER NOT NULL,
    PRIMARY KEY (source_id, labels)
);
CREATE INDEX prelabel_auto_accept_project ON prelabel_auto_accept(project_id);

-- The items auto-accepted now. Never an item in a dev set or a release (left out when the set
-- is rebuilt, and deleted by the triggers below the moment an item enters one), a gold item, a
-- complete item, an item with a review decision, or an item a labeler answered otherwise.
CREATE TABLE prelabel_accepted (
    item_id     INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    source_id   INTEGER NOT NULL REFERENCES prelabel_sources(id) ON DELETE CASCADE,
    labels      TEXT NOT NULL,
    score       REAL NOT NULL,
    accepted_at INTEGER NOT NULL
);
CREATE INDEX prelabel_accepted_project ON prelabel_accepted(project_id, source_id);

-- Dev and test labels stay human: an item that enters a dev set or a release loses its auto
-- label at once, in the transaction that puts it there.
CREATE TRIGGER prelabel_accepted_devset AFTER INSERT ON devset_members
BEGIN
    DELETE FROM prelabel_accepted WHERE item_id = NEW.item_id;
END;
CREATE TRIGGER prelabel_accepted_release AFTER INSERT ON release_items
BEGIN
    DELETE FROM prelabel_accepted WHERE item_id = NEW.item_id;
END;

-- A human answer that contradicts a pre-label scored at least this opens a
-- 'prelabel_disagreement' review entry.
ALTER TABLE prelabel_settings ADD COLUMN disagreement_min_score REAL NOT NULL DEFAULT 0.9;
