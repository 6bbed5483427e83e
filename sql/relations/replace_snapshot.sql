-- Swap in a snapshot (called inside one transaction): readers see the old one or the new one.
DELETE FROM {table} WHERE snapshot_id IN (
    SELECT snapshot_id FROM relation_snapshots
    WHERE dataset = $dataset AND kind = $kind AND params_hash = $params_hash
      AND as_of IS NOT DISTINCT FROM CAST($as_of AS TIMESTAMP));
DELETE FROM relation_snapshots
WHERE dataset = $dataset AND kind = $kind AND params_hash = $params_hash
  AND as_of IS NOT DISTINCT FROM CAST($as_of AS TIMESTAMP);
INSERT INTO {table} SELECT $snapshot_id, src, dst, n, weight, rank, via FROM rel_out;
INSERT INTO relation_snapshots VALUES ($snapshot_id, $dataset, $kind, CAST($as_of AS TIMESTAMP),
    $params_json, $params_hash, $rows, $stats_json, $seconds, now()::TIMESTAMP);
