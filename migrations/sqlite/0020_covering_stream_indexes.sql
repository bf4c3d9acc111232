-- Row look-ups out of the labeling loop's writer (issue 11). The perf profile of 50 labelers on
-- SQLite put a quarter of the writer connection's thread in table look-ups (docs/bench.md,
-- session 9). Most came from the progress count reading every done item's row (fixed in the
-- statement, store::assignment::PROGRESS_SQL); these indexes remove the rest.
--
-- The next-item query walks a stream index in order and passes over every item other labelers
-- hold right now (with 50 labelers, ~50 items at the front of the stream); for each it read the
-- item's row (text included) only for `label_count` and `overlap`. With both columns in the
-- indexes the scan is index-only. SQLite still reads `complete` and `gold` for
-- the query's own conditions on them even though the index's WHERE implies them, so they are
-- columns too: in these partial indexes they are always 0 and NULL, a byte each. `priority`
-- is one for the 'priority' order's second step (priority <= 0) on items_stream_rank.
--
-- The 'import' order (the default) walked items_open (project_id, complete, id), which covers
-- neither the gold condition nor the capacity: it gets a partial index of its own, appended in
-- id order by an import (cheap, unlike the random rank). items_open stays for the exports.
--
-- PostgreSQL gains nothing from covering here: its hand-out locks the row it takes (FOR NO KEY
-- UPDATE) and so reads it anyway; ../postgres/0020_covering_stream_indexes.sql says so.
DROP INDEX items_stream_rank;
CREATE INDEX items_stream_rank ON items(project_id, rank, id, label_count, overlap, priority, complete, gold)
    WHERE complete = 0 AND gold IS NULL;
DROP INDEX items_stream_raised;
CREATE INDEX items_stream_raised ON items(project_id, priority DESC, rank, id, label_count, overlap, complete, gold)
    WHERE complete = 0 AND gold IS NULL AND priority > 0;
CREATE INDEX items_stream_import ON items(project_id, complete, id, label_count, overlap, gold)
    WHERE complete = 0 AND gold IS NULL;
-- The capacity test of each item the scan passes (unexpired leases of other labelers) read
-- `expires_at` from the leases table row by row; with it in an index it reads the index alone.
CREATE INDEX leases_capacity ON leases(item_id, user_id, expires_at);
-- A project's done count is its row's plus its 64 shards' (0019): every hand-out's progress
-- and every submission's read of the project summed them by reading 64 rows of the shards
-- table. This index gives the sum from one index page.
CREATE INDEX project_done_shards_sum ON project_done_shards(project_id, done);
