-- Each labeler's newest annotation change in a project, kept by triggers beside the counts of
-- 0021 (issue 11). Kept column-for-column equal to ../sqlite/0024_labeler_last_update.sql,
-- which says why: the job runner's change check read every annotation's `updated_at` every 15 s.
-- `last_update` only grows; a deletion shows in the count.
ALTER TABLE labeler_totals ADD COLUMN last_update BIGINT NOT NULL DEFAULT 0;
UPDATE labeler_totals SET last_update = COALESCE((SELECT MAX(a.updated_at) FROM annotations a
    WHERE a.project_id = labeler_totals.project_id AND a.user_id = labeler_totals.user_id), 0);
CREATE OR REPLACE FUNCTION labeler_totals_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO labeler_totals (project_id, user_id, annotations, since, since_count, last_update)
            VALUES (NEW.project_id, NEW.user_id, 1, 0, 1, NEW.updated_at)
            ON CONFLICT (project_id, user_id) DO UPDATE SET
                annotations = labeler_totals.annotations + 1,
                since_count = labeler_totals.since_count + CASE WHEN NEW.created_at >= labeler_totals.since THEN 1 ELSE 0 END,
                last_update = GREATEST(labeler_totals.last_update, NEW.updated_at);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE labeler_totals SET last_update = GREATEST(last_update, NEW.updated_at)
            WHERE project_id = NEW.project_id AND user_id = NEW.user_id;
    ELSE
        UPDATE labeler_totals SET
                annotations = annotations - 1,
                since_count = since_count - CASE WHEN OLD.created_at >= since THEN 1 ELSE 0 END
            WHERE project_id = OLD.project_id AND user_id = OLD.user_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER annotations_last_update AFTER UPDATE OF updated_at ON annotations
    FOR EACH ROW EXECUTE FUNCTION labeler_totals_count();
