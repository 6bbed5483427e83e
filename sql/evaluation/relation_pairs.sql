-- The pairs of one relation snapshot, for scoring (top-up rows carry no weight).
SELECT src, dst, coalesce(n, 0) AS n, coalesce(weight, 0) AS weight
FROM {table} WHERE snapshot_id = $snapshot_id;
