-- Drop a version's rows (inside the transaction that writes its replacement).
DELETE FROM semantic_ids WHERE sid_version = $sid_version;
DELETE FROM sid_centroids WHERE sid_version = $sid_version;
DELETE FROM sid_versions WHERE sid_version = $sid_version;
