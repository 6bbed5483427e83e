-- What the registry says a snapshot was computed from.
SELECT kind, as_of, params_json FROM relation_snapshots
WHERE snapshot_id = $snapshot_id AND dataset = $dataset;
