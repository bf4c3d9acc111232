-- Pre-labels (issue 10). Kept column-for-column equal to ../sqlite/0012_prelabels.sql.
--
-- A pre-label is a label proposed for an item by something other than a person: an imported
-- model's prediction, the project's labeling rules (combined by a label model), or the
-- built-in model. It is never an annotation: it does not count towards an item's k labels and
-- becomes a final label only when a lead turns auto-accept on for its source (provenance
-- `auto:<source>`), never for items in dev sets or releases.

-- Where pre-labels come from. An imported model is one source per (name, version), so two
-- versions of one model can be compared; the rules and the built-in model are one source each.
CREATE TABLE prelabel_sources (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('model', 'rules', 'builtin')),
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (project_id, kind, name, version)
);

-- One pre-label per (source, item): importing a source's prediction for an item again
-- replaces the earlier one.
CREATE TABLE prelabels (
    source_id   BIGINT NOT NULL REFERENCES prelabel_sources(id) ON DELETE CASCADE,
    item_id     BIGINT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    labels      TEXT NOT NULL,             -- JSON array of label names, in the project's order
    score       DOUBLE PRECISION,                      -- in [0, 1]; NULL when the source gave none
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (source_id, item_id)
);
-- The labeling view reads an item's pre-labels; auto-accept and audits walk a source's.
CREATE INDEX prelabels_item ON prelabels(item_id);
CREATE INDEX prelabels_project ON prelabels(project_id, source_id, score);

-- The audit draw: a seeded share of each source's pre-labels per label, sent to the
-- 'prelabel_audit' review queue. The item's latest review decision says whether the pre-label
-- was right; the audited precision per source and label rests on these rows only.
CREATE TABLE prelabel_audits (
    source_id   BIGINT NOT NULL REFERENCES prelabel_sources(id) ON DELETE CASCADE,
    item_id     BIGINT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    drawn_at    BIGINT NOT NULL,
    PRIMARY KEY (source_id, item_id)
);
CREATE INDEX prelabel_audits_project ON prelabel_audits(project_id);

-- A lead's labeling rules. `label` NULL: the rule abstains on what it matches (an exception
-- that keeps other rules off those items is written as a rule for another label instead).
CREATE TABLE prelabel_rules (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('keyword', 'regex', 'meta')),
    pattern     TEXT NOT NULL,             -- the keyword, the expression, or the meta value
    meta_key    TEXT,                      -- for kind 'meta'
    label       TEXT,
    enabled     BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

-- Each training of the built-in model: what it learned from and how well it did held out.
CREATE TABLE prelabel_model_runs (
    id           BIGSERIAL PRIMARY KEY,
    project_id   BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    source_id    BIGINT NOT NULL REFERENCES prelabel_sources(id) ON DELETE CASCADE,
    label_count  BIGINT NOT NULL,         -- final labels it was trained on
    folds        BIGINT NOT NULL,
    cv_correct   BIGINT NOT NULL,         -- out-of-fold predictions that were right
    majority     BIGINT NOT NULL,         -- the commonest label's count (the baseline)
    scored       BIGINT NOT NULL,         -- unlabeled items scored
    trained_at   BIGINT NOT NULL
);
CREATE INDEX prelabel_model_runs_project ON prelabel_model_runs(project_id, id);

-- What labelers did with the pre-labels they were shown: one row per (item, labeler,
-- source) when an annotation is written for an item that had a pre-label. `accepted`: the
-- answer equals the pre-label. `shown`: the pre-label was on screen before the answer (not
-- when the project hides pre-labels until answered); agreement is measured on the hidden ones
-- without anchoring. `time_ms` is the labeler's time on the item, for the time saved.
CREATE TABLE prelabel_outcomes (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    source_id   BIGINT NOT NULL REFERENCES prelabel_sources(id) ON DELETE CASCADE,
    item_id     BIGINT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    labels      TEXT NOT NULL,             -- the pre-label's labels (JSON array)
    accepted    BIGINT NOT NULL,
    shown       BIGINT NOT NULL,
    time_ms     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (item_id, user_id, source_id)
);
CREATE INDEX prelabel_outcomes_source ON prelabel_outcomes(project_id, source_id);

-- Per-project pre-label settings (a table of its own, so the projects table and its settings
-- form stay as they are). No row: the defaults below.
CREATE TABLE prelabel_settings (
    project_id          BIGINT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    hide_until_answered BIGINT NOT NULL DEFAULT 0,
    audit_rate          DOUBLE PRECISION NOT NULL DEFAULT 0.05,  -- share of each source's pre-labels audited
    audit_seed          BIGINT NOT NULL DEFAULT 0,
    retrain_every       BIGINT NOT NULL DEFAULT 0,  -- new final labels between trainings; 0: off
    -- The precision the auto-accept threshold must reach (its Wilson lower bound, 95%).
    target_precision    DOUBLE PRECISION NOT NULL DEFAULT 0.95,
    updated_at          BIGINT NOT NULL
);
