-- One shard of a snapshot's events: the users whose hash falls in shard $shard of $shards.
CREATE OR REPLACE TEMP TABLE rel_input AS
SELECT user_idx, pos, item_idx FROM read_parquet($path)
WHERE hash(user_idx) % $shards = $shard;
