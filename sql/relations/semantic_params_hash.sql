-- The parameters hash of a semantic snapshot (a co-occurrence top-up depends on it).
SELECT params_hash FROM relation_snapshots WHERE snapshot_id = $snapshot_id AND kind = 'semantic';
