-- Freezing a release runs as a background job (issue 9): a freeze of 100,000 items against a
-- pool of a million takes longer than a request. Kept equal to ../sqlite/0018_release_freeze_job.sql.

-- What a running job is doing now ('reading members', 'leakage check', ...), shown beside its
-- progress counts; NULL for kinds that report counts only.
ALTER TABLE jobs ADD COLUMN phase TEXT;

-- The freeze job that wrote a release. A freeze interrupted by a restart runs again from the
-- start; if its release was already committed, this finds it instead of writing a twin.
ALTER TABLE releases ADD COLUMN job_id BIGINT;
CREATE UNIQUE INDEX releases_job ON releases(job_id) WHERE job_id IS NOT NULL;
