-- An audited instruction build: the one named, else the dataset's newest.
SELECT build_id, sid_version, cooccurrence_snapshot, semantic_snapshot, path, params_json,
       counts_json, audit_json
FROM instruction_builds
WHERE dataset = $dataset AND ($build_id IS NULL OR build_id = $build_id)
ORDER BY created_at DESC
LIMIT 1;
