-- The job runner runs at most one job per (kind, project) at a time, also with several
-- server instances on one database: a second instance's claim of a job whose twin is already
-- running fails on this index instead of running the same work twice.
-- Kept equal in ../sqlite and ../postgres.
CREATE UNIQUE INDEX jobs_one_running ON jobs(kind, project_id) WHERE state = 'running';
