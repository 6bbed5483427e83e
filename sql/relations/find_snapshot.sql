-- The snapshot for (dataset, kind, as_of, params), if one was already made.
SELECT snapshot_id, rows, stats_json, seconds FROM relation_snapshots
WHERE dataset = $dataset AND kind = $kind AND params_hash = $params_hash
  AND as_of IS NOT DISTINCT FROM CAST($as_of AS TIMESTAMP);
