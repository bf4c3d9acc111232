-- A completion no longer moves an entry across the items' (project_id, complete, id) index
-- (issue 11). Kept statement-for-statement equal in ../sqlite and ../postgres.
--
-- `items_open` (0001) held every item, keyed by `complete`: the submission that completes an
-- item deleted its entry among the open ones and inserted it among the done ones, two pages at
-- random places when the project labels in random order. Per label that was 1.30 of the 5.95
-- pages SQLite's commit wrote (docs/bench.md, session 23), more than the item's own row.
-- Open items are found through the stream indexes (0007, 0016, 0020); what still asks for items
-- by `complete = 1` (the complete-only export, the built-in model's label count, the recount of
-- done items after an overlap change) needs the done ones only. A partial index of those takes
-- one insert per completion, none per imported item. With `gold` and `complete` as columns it
-- also covers the model's count of done items that are not gold, which read every done item's
-- row before (SQLite reads a condition's column even when the index's WHERE implies it).
DROP INDEX items_open;
CREATE INDEX items_done ON items(project_id, id, complete, gold) WHERE complete = 1;
