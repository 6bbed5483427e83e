-- A stored SID version of a dataset (the cache lookup, and the check before using one).
SELECT sid_version, model, levels, codebook, params_json, stats_json, seconds
FROM sid_versions WHERE sid_version = $sid_version AND dataset = $dataset
