-- Review queues and decisions (issue 7). Kept column-for-column equal to ../postgres/0006_review.sql.
--
-- A queue is a set of items waiting for a lead's decision. Membership comes from two places:
-- - rows of `review_entries`: items put in a queue by an event (labels that differ, written by
--   the submission's hook; a gold miss, likewise; any source through the queue API);
-- - derived at read time (server/src/store/review.rs): complete items whose consensus posterior
--   is below the project's review_threshold (disagreement), and the seeded audit draw (audit).
-- A decision on an item takes it out of every queue: its open entries are resolved (never
-- deleted), and the derived parts leave out items that have a decision.

CREATE TABLE review_entries (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    item_id     INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    queue       TEXT NOT NULL,              -- 'disagreement', 'gold_miss', 'audit' or a custom name
    reason      TEXT NOT NULL,              -- e.g. 'labels_differ', 'gold_miss', or the feeder's
    detail      TEXT NOT NULL DEFAULT '{}', -- JSON object: what the reason says in numbers
    labeler_id  INTEGER REFERENCES users(id), -- the labeler concerned (a gold miss's), if any
    created_at  INTEGER NOT NULL,
    resolved_at INTEGER,                    -- NULL while open
    resolved_by INTEGER REFERENCES users(id),
    decision_id INTEGER                     -- the decision that resolved it
);
-- One open entry per (item, queue, labeler): a feed sent twice, or a gold item missed twice by
-- the same labeler, stays one entry (inserts use ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX review_entries_open ON review_entries(item_id, queue, COALESCE(labeler_id, 0))
    WHERE resolved_at IS NULL;
-- Counts per queue (open and resolved) and keyset paging of a queue's open items by item id.
CREATE INDEX review_entries_queue ON review_entries(project_id, queue, resolved_at, item_id);

-- A lead's decision on an item: its final labels. Append-only; the latest per item (highest
-- id) is the item's adjudicated label.
CREATE TABLE review_decisions (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    item_id      INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    reviewer_id  INTEGER NOT NULL REFERENCES users(id),
    queue        TEXT NOT NULL,             -- the queue it was decided from
    labels       TEXT NOT NULL,             -- JSON array of label names
    note         TEXT NOT NULL DEFAULT '',
    gold_outcome TEXT CHECK (gold_outcome IN ('labeler_wrong', 'gold_corrected')),
    created_at   INTEGER NOT NULL
);
-- The latest decision of an item; "has a decision" for the derived queues.
CREATE INDEX review_decisions_item ON review_decisions(item_id, id);
-- The export reads a page's decisions by item id range.
CREATE INDEX review_decisions_project ON review_decisions(project_id, item_id, id);

-- Items whose labels already differ when this migration runs go to the disagreement queue,
-- as the submission hook would have put them (gold items have their own queue).
INSERT INTO review_entries (project_id, item_id, queue, reason, detail, created_at)
SELECT a.project_id, a.item_id, 'disagreement', 'labels_differ', '{}', MAX(a.updated_at)
FROM annotations a JOIN items i ON i.id = a.item_id
WHERE i.gold IS NULL
GROUP BY a.project_id, a.item_id
HAVING MIN(a.labels) <> MAX(a.labels);
