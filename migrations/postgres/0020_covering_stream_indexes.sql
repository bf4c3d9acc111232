-- ../sqlite/0020_covering_stream_indexes.sql makes SQLite's hand-out scan index-only: it no
-- longer reads the row of every item other labelers hold, nor the done count's shard rows.
-- Nothing changes here on purpose. PostgreSQL's hand-out claims the item it takes (FOR NO KEY
-- UPDATE SKIP LOCKED, see store::assignment), which visits each candidate's heap tuple to test
-- its lock, so wider indexes would cost every write and save no read; the shards change on
-- every completing submission, so an index-only scan of them would visit the heap all the
-- same. The migration exists so both backends keep the same numbering.
SELECT 1;
