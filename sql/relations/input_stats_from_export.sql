-- What a sharded snapshot was computed from, read from its exported events.
SELECT count(*) AS events, count(DISTINCT user_idx) AS users, count(DISTINCT item_idx) AS items
FROM read_parquet($path);
