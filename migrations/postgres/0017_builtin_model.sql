-- The built-in model wired end to end (issue 10). Kept column-for-column equal to
-- ../sqlite/0017_builtin_model.sql.
--
-- Training is a background job (`prelabels::model_job`); each finished run is a row of
-- `prelabel_model_runs` (0012) and its scores are the pre-labels of the project's one
-- `builtin` source, replaced run by run.

-- Settings: the built-in model on/off (retrain automatically every `retrain_every` new human
-- final labels, 0012's column; 0 there means "never set": the default 200 applies).
ALTER TABLE prelabel_settings ADD COLUMN builtin_enabled BIGINT NOT NULL DEFAULT 0;

-- The uncertainty order is read by the labeling hand-out inside its transaction, with the
-- project's other stream settings: a column of `projects` (added, not a rebuilt table: the
-- `assignment_order` CHECK stays as it is).
ALTER TABLE projects ADD COLUMN uncertainty_order BIGINT NOT NULL DEFAULT 0;

-- The rank of an unlabeled item by the last run's uncertainty (1 = least sure: the smallest
-- margin between the two likeliest labels), for the few thousand least certain items only;
-- NULL for the rest. The hand-out walks this partial index, so it stays small and the
-- stream's query an index walk.
ALTER TABLE items ADD COLUMN model_rank BIGINT;
CREATE INDEX items_model_rank ON items(project_id, model_rank) WHERE model_rank IS NOT NULL;

-- What a run also reports: labels per class (JSON object), the items the label-error search
-- flagged, the cheap "human final labels so far" count the automatic retrain compares against
-- (`store::model::label_signal`), and the job that made it.
ALTER TABLE prelabel_model_runs ADD COLUMN label_counts TEXT NOT NULL DEFAULT '{}';
ALTER TABLE prelabel_model_runs ADD COLUMN flagged BIGINT NOT NULL DEFAULT 0;
ALTER TABLE prelabel_model_runs ADD COLUMN label_signal BIGINT NOT NULL DEFAULT 0;
ALTER TABLE prelabel_model_runs ADD COLUMN job_id BIGINT;
