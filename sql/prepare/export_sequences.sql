-- One row per user with the ordered item indices, timestamps and split labels (for Parquet).
SELECT user_id, user_idx, list(item_idx ORDER BY pos) AS items, list(ts ORDER BY pos) AS ts,
       list(split ORDER BY pos) AS splits
FROM seq GROUP BY user_id, user_idx ORDER BY user_idx
