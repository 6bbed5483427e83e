-- New diagnostics after items were added to a version.
UPDATE sid_versions SET stats_json = $stats_json WHERE sid_version = $sid_version
