-- The labelers' stream (issues 7 and 8): indexes that let next-item take the first open item
-- in each assignment order without sorting the project's items. Kept equal to
-- ../postgres/0007_stream_order.sql.
--
-- Partial indexes of the items still open to the overlap flow (`complete = 0`, not gold): the
-- next-item query names both conditions, so either backend can use them, and an item leaves
-- them once it has its labels, so they shrink as the project gets done. The 'import' order
-- keeps using items_open (project_id, complete, id) from 0001.

-- 'random': by the rank fixed at import.
CREATE INDEX items_stream_rank ON items(project_id, rank, id) WHERE complete = 0 AND gold IS NULL;
-- 'priority': higher priority first (a dev-set campaign), then by rank.
CREATE INDEX items_stream_priority ON items(project_id, priority DESC, rank, id) WHERE complete = 0 AND gold IS NULL;
-- Gold items a labeler has not answered, from a starting point per labeler in rank order.
CREATE INDEX items_gold_rank ON items(project_id, rank, id) WHERE gold IS NOT NULL;
