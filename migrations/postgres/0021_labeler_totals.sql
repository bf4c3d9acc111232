-- Each labeler's number of annotations in a project (in all, and since `since`), kept by
-- triggers (issue 11). Kept column-for-column equal to ../sqlite/0021_labeler_totals.sql,
-- which says why: every hand-out's progress counted an index range as long as the labeler's
-- history.
CREATE TABLE labeler_totals (
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    annotations BIGINT NOT NULL,
    since       BIGINT NOT NULL,
    since_count BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
INSERT INTO labeler_totals (project_id, user_id, annotations, since, since_count)
    SELECT project_id, user_id, COUNT(*), 0, COUNT(*) FROM annotations GROUP BY project_id, user_id;
CREATE FUNCTION labeler_totals_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO labeler_totals (project_id, user_id, annotations, since, since_count)
            VALUES (NEW.project_id, NEW.user_id, 1, 0, 1)
            ON CONFLICT (project_id, user_id) DO UPDATE SET
                annotations = labeler_totals.annotations + 1,
                since_count = labeler_totals.since_count + CASE WHEN NEW.created_at >= labeler_totals.since THEN 1 ELSE 0 END;
    ELSE
        UPDATE labeler_totals SET
                annotations = annotations - 1,
                since_count = since_count - CASE WHEN OLD.created_at >= since THEN 1 ELSE 0 END
            WHERE project_id = OLD.project_id AND user_id = OLD.user_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER annotations_count AFTER INSERT OR DELETE ON annotations
    FOR EACH ROW EXECUTE FUNCTION labeler_totals_count();
