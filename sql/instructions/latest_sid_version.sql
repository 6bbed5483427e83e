-- The newest SID version of a dataset (what `hoprec instructions` uses by default).
SELECT sid_version FROM sid_versions WHERE dataset = $dataset
ORDER BY created_at DESC LIMIT 1;
