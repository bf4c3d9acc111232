-- Each labeler's newest annotation change in a project, kept by triggers beside the counts of
-- 0021 (issue 11). Kept column-for-column equal to ../postgres/0024_labeler_last_update.sql.
--
-- Every 15 s the job runner asks whether a project's annotations changed since its consensus
-- was last refreshed (jobs::enqueue_changed): their count, and the newest `updated_at`. No
-- index holds `updated_at`, so that maximum read every annotation of every project: 3.3 s at
-- 3,000,000 annotations (a done million-item project with k = 3), a fifth of a core taken from
-- the labelers on a server nobody was using (docs/bench.md, session 31). Now both are read from
-- the project's `labeler_totals` rows, one per labeler.
--
-- `last_update` only grows: a deleted annotation leaves it as it was. The change check sees a
-- deletion by the count, as before.
ALTER TABLE labeler_totals ADD COLUMN last_update INTEGER NOT NULL DEFAULT 0;
UPDATE labeler_totals SET last_update = COALESCE((SELECT MAX(a.updated_at) FROM annotations a
    WHERE a.project_id = labeler_totals.project_id AND a.user_id = labeler_totals.user_id), 0);
DROP TRIGGER annotations_count_insert;
CREATE TRIGGER annotations_count_insert AFTER INSERT ON annotations BEGIN
    INSERT INTO labeler_totals (project_id, user_id, annotations, since, since_count, last_update)
        VALUES (NEW.project_id, NEW.user_id, 1, 0, 1, NEW.updated_at)
        ON CONFLICT (project_id, user_id) DO UPDATE SET
            annotations = labeler_totals.annotations + 1,
            since_count = labeler_totals.since_count + CASE WHEN NEW.created_at >= labeler_totals.since THEN 1 ELSE 0 END,
            last_update = MAX(labeler_totals.last_update, NEW.updated_at);
END;
CREATE TRIGGER annotations_last_update AFTER UPDATE OF updated_at ON annotations BEGIN
    UPDATE labeler_totals SET last_update = MAX(last_update, NEW.updated_at)
        WHERE project_id = NEW.project_id AND user_id = NEW.user_id;
END;
