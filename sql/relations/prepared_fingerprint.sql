-- The prepared data a snapshot depends on (content fingerprint written by prepare).
SELECT json_extract_string(stats_json, '$.fingerprint') FROM prepare_runs WHERE dataset = $dataset;
