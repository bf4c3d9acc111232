-- The team lead's side (issue 7): quality settings per project, gold answers, the background
-- job runner's state, and the consensus it computes. Review queues and decisions come in 0006.
-- Kept column-for-column equal to ../sqlite/0005_quality.sql.

-- Level of measurement for Krippendorff's alpha: 'ordinal' when the label order is meaningful.
ALTER TABLE projects ADD COLUMN measurement TEXT NOT NULL DEFAULT 'nominal'
    CHECK (measurement IN ('nominal', 'ordinal'));
-- The alpha a lead wants; slices whose interval lies below it are marked on the dashboard.
ALTER TABLE projects ADD COLUMN target_alpha DOUBLE PRECISION NOT NULL DEFAULT 0.8;
-- How an item's labels are combined into its consensus label.
ALTER TABLE projects ADD COLUMN consensus_method TEXT NOT NULL DEFAULT 'majority'
    CHECK (consensus_method IN ('majority', 'dawid_skene'));
-- A complete item whose consensus posterior is below this goes to the disagreement queue.
ALTER TABLE projects ADD COLUMN review_threshold DOUBLE PRECISION NOT NULL DEFAULT 0.8;
-- Share of a labeler's stream drawn from gold items (0 turns gold off).
ALTER TABLE projects ADD COLUMN gold_rate DOUBLE PRECISION NOT NULL DEFAULT 0.05;
-- 1: after a gold miss the labeler is shown the right answer (training mode).
ALTER TABLE projects ADD COLUMN gold_training BIGINT NOT NULL DEFAULT 0;
-- Share of completed items drawn (with audit_seed) into the random audit queue.
ALTER TABLE projects ADD COLUMN audit_rate DOUBLE PRECISION NOT NULL DEFAULT 0.02;
ALTER TABLE projects ADD COLUMN audit_seed BIGINT NOT NULL DEFAULT 0;

-- The known answer of a gold item: a JSON array of label names; NULL for an ordinary item.
-- Gold items are served outside the overlap-k flow and never count towards k.
ALTER TABLE items ADD COLUMN gold TEXT;
CREATE INDEX items_gold ON items(project_id, id) WHERE gold IS NOT NULL;

-- The order labelers' streams follow (issue 8): 'random' (a seeded shuffle by items.rank, the
-- default for new projects), 'import' (item id; what existing projects did until now) or
-- 'priority' (items.priority first, e.g. a dev-set campaign, then by rank).
ALTER TABLE projects ADD COLUMN assignment_order TEXT NOT NULL DEFAULT 'import'
    CHECK (assignment_order IN ('random', 'import', 'priority'));
-- An item's place in the random order, fixed at import, so ordering costs no more than the
-- id order (no ORDER BY random() per request). Existing items get a multiplicative hash.
ALTER TABLE items ADD COLUMN rank BIGINT NOT NULL DEFAULT 0;
UPDATE items SET rank = (id * 2654435761) % 4294967296;
-- Higher first under 'priority' order (a dev-set campaign raises its items).
ALTER TABLE items ADD COLUMN priority BIGINT NOT NULL DEFAULT 0;
-- Labels this item needs when it differs from the project's overlap (a dev-set campaign's own
-- overlap); NULL: the project's.
ALTER TABLE items ADD COLUMN overlap BIGINT;

-- The one background job runner's state: work longer than a request (consensus refresh,
-- dashboard, model training, big exports). A restart finds 'running' jobs whose heartbeat is
-- stale and resumes or fails them.
CREATE TABLE jobs (
    id             BIGSERIAL PRIMARY KEY,
    kind           TEXT NOT NULL,    -- e.g. 'consensus'
    project_id     BIGINT REFERENCES projects(id) ON DELETE CASCADE,
    state          TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    progress_done  BIGINT NOT NULL DEFAULT 0,
    progress_total BIGINT NOT NULL DEFAULT 0,
    params         TEXT NOT NULL DEFAULT '{}', -- JSON
    result         TEXT,                       -- JSON, when done
    error          TEXT,                       -- when failed
    created_at     BIGINT NOT NULL,
    started_at     BIGINT,
    heartbeat_at   BIGINT,
    finished_at    BIGINT
);
CREATE INDEX jobs_state ON jobs(state, id);
CREATE INDEX jobs_project ON jobs(project_id, kind, id);

-- Each labeled item's consensus, as last computed by the consensus job.
CREATE TABLE consensus (
    item_id     BIGINT PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    labels      TEXT NOT NULL,    -- JSON array of label names (one for single-label projects)
    posterior   DOUBLE PRECISION NOT NULL,    -- probability of the chosen label(s) under the method
    method      TEXT NOT NULL CHECK (method IN ('majority', 'dawid_skene')),
    n_labels    BIGINT NOT NULL, -- annotations it was computed from
    computed_at BIGINT NOT NULL
);
CREATE INDEX consensus_project ON consensus(project_id, posterior);
