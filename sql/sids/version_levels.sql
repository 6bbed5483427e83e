-- The number of RQ levels of a version (any dataset).
SELECT levels FROM sid_versions WHERE sid_version = $sid_version
