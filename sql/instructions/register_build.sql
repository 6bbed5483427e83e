-- Record an audited build (a rebuild of the same inputs replaces its row).
DELETE FROM instruction_builds WHERE build_id = $build_id;
INSERT INTO instruction_builds VALUES ($build_id, $dataset, $sid_version, $cooccurrence_snapshot,
    $semantic_snapshot, $params_json, $counts_json, $audit_json, $path, now()::TIMESTAMP);
