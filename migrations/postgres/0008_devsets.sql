-- Production-matched dev sets (issue 8): production profiles, dev-set drafts and their members.
-- Kept column-for-column equal to ../sqlite/0008_devsets.sql.

-- What production looks like: the joint counts of its attributes' values (a numeric attribute
-- as quantile buckets of the production values), from an uploaded sample or counts table.
CREATE TABLE production_profiles (
    id           BIGSERIAL PRIMARY KEY,
    project_id   BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    profile_date TEXT NOT NULL,   -- YYYY-MM-DD: when production looked like this
    records      DOUBLE PRECISION NOT NULL,   -- total count (a counts table may carry large counts)
    attributes   TEXT NOT NULL,   -- JSON [{"name", "kind": "categorical"|"numeric", "edges"}]
    cells        TEXT NOT NULL,   -- JSON [[[value per attribute], count], ...]
    created_by   BIGINT REFERENCES users(id),
    created_at   BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

-- A dev set: its draft (stratification, size or size calculator, minimum, must-include,
-- exclusions; JSON as posted) and, once sampled, its members.
CREATE TABLE devsets (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    profile_id  BIGINT NOT NULL REFERENCES production_profiles(id),
    draft       TEXT NOT NULL,
    seed        BIGINT NOT NULL,
    overlap     BIGINT NOT NULL DEFAULT 3,    -- the campaign's labels per item
    priority    BIGINT NOT NULL DEFAULT 100,  -- items.priority of its members
    sampled_at  BIGINT,
    created_by  BIGINT REFERENCES users(id),
    created_at  BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

-- The primary key on item_id is the invariant "no item is in two dev sets": a second sample
-- that picked an item of another dev set fails as a whole instead of sharing it.
CREATE TABLE devset_members (
    item_id    BIGINT PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    devset_id  BIGINT NOT NULL REFERENCES devsets(id) ON DELETE CASCADE,
    stratum    TEXT NOT NULL
);
CREATE INDEX devset_members_set ON devset_members(devset_id, stratum);
