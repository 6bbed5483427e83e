-- Register a freshly built version.
INSERT INTO sid_versions VALUES ($sid_version, $dataset, $model, $method, $levels, $codebook,
    $params_json, $stats_json, $seconds, now()::TIMESTAMP)
