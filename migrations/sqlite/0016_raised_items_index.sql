-- Import speed (issue 11): items_stream_priority (0007) indexed every open item by
-- (priority, rank), and the rank is random, so each imported item was one more insert at a
-- random place of a large b-tree; with items_stream_rank beside it, importing paid twice for
-- random order. Only items a dev-set campaign raised (priority > 0) need the priority index:
-- the 'priority' order now takes raised items from this smaller index first, then the others
-- from items_stream_rank. Priorities are never negative (campaigns raise, nothing lowers).
-- Kept equal to ../postgres/0016_raised_items_index.sql.
DROP INDEX items_stream_priority;
CREATE INDEX items_stream_raised ON items(project_id, priority DESC, rank, id)
    WHERE complete = 0 AND gold IS NULL AND priority > 0;
