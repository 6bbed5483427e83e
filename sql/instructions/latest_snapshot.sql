-- The newest all-events snapshot of a kind (what `hoprec instructions` uses by default).
SELECT snapshot_id FROM relation_snapshots
WHERE dataset = $dataset AND kind = $kind AND as_of IS NULL
ORDER BY created_at DESC, snapshot_id DESC LIMIT 1;
