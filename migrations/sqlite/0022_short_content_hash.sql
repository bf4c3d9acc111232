-- Items keep the first 128 bits of their content hash, not all 256 (issue 11). Kept
-- statement-for-statement equal in ../sqlite and ../postgres.
--
-- The project's unique index on (project_id, content_hash) takes an import's rows at random
-- places. At a million items its 66-character keys outgrew the writer's page cache and made it
-- the largest cost of the import (`docs/bench.md`, session 17). The kind tag and 32 hex digits
-- (`import::STORED_CONTENT_HASH_LEN`) halve the index; 128 bits still tell contents apart, and
-- the import's validation pass already compared only those. Items imported before keep working
-- as duplicates of the same content imported after.
UPDATE items SET content_hash = substr(content_hash, 1, 34) WHERE length(content_hash) > 34;
