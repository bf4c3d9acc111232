-- Mirrorset schema (SQLite). Timestamps are milliseconds since the Unix epoch.
-- Kept column-for-column equal to ../postgres/0001_initial.sql.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'lead', 'labeler')),
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE projects (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    instructions  TEXT NOT NULL DEFAULT '',
    kind          TEXT NOT NULL CHECK (kind IN ('single', 'multi')),
    labels        TEXT NOT NULL,              -- JSON array of {name, key, color}
    overlap       INTEGER NOT NULL CHECK (overlap >= 1),
    lease_seconds INTEGER NOT NULL CHECK (lease_seconds >= 1),
    item_count    INTEGER NOT NULL DEFAULT 0, -- kept by the store, so listings never count
    done_count    INTEGER NOT NULL DEFAULT 0, -- items with label_count >= overlap
    created_at    INTEGER NOT NULL
);

CREATE TABLE project_members (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members(user_id);

-- Images are stored once per content hash in the data directory.
CREATE TABLE images (
    sha256     TEXT PRIMARY KEY,
    format     TEXT NOT NULL,
    width      INTEGER NOT NULL,
    height     INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE items (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    external_id  TEXT,
    kind         TEXT NOT NULL CHECK (kind IN ('text', 'image')),
    text         TEXT,
    image_sha256 TEXT REFERENCES images(sha256),
    image_name   TEXT,
    meta         TEXT NOT NULL DEFAULT '{}', -- JSON object of slice attributes
    weight       REAL NOT NULL DEFAULT 1,
    source       TEXT,
    license      TEXT,
    content_hash TEXT NOT NULL,
    label_count  INTEGER NOT NULL DEFAULT 0,
    complete     INTEGER NOT NULL DEFAULT 0, -- label_count >= project overlap
    created_at   INTEGER NOT NULL,
    UNIQUE (project_id, content_hash),
    UNIQUE (project_id, external_id)
);
-- Assignment walks the open items of a project in id order.
CREATE INDEX items_open ON items(project_id, complete, id);

-- A lease reserves an item for one labeler until expires_at.
CREATE TABLE leases (
    item_id    INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL,
    leased_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (item_id, user_id)
);
CREATE INDEX leases_user ON leases(user_id, project_id);

-- A skipped item is not handed to that labeler again while others remain.
CREATE TABLE skips (
    item_id    INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL,
    skipped_at INTEGER NOT NULL,
    PRIMARY KEY (item_id, user_id)
);
CREATE INDEX skips_user ON skips(user_id, project_id, skipped_at);

-- One annotation per (item, labeler); changing it updates the row.
CREATE TABLE annotations (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    item_id    INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    labels     TEXT NOT NULL,     -- JSON array of label names
    time_ms    INTEGER NOT NULL,  -- total time spent, over all submissions
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (item_id, user_id)
);
CREATE INDEX annotations_user ON annotations(user_id, project_id, id);
CREATE INDEX annotations_user_time ON annotations(project_id, user_id, created_at);

-- Every accepted submission's client id, so a retried request changes nothing.
CREATE TABLE submissions (
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL,
    annotation_id INTEGER NOT NULL REFERENCES annotations(id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
