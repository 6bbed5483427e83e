-- How many well-formed records carry each field: a required field that no record has means the
-- mapping or the format is wrong, which is fatal rather than a quarantine matter. Read from
-- `checked`, so the staged rows are computed once.
SELECT count(*) AS n_records,
       count(*) FILTER (WHERE parsed) AS n_parsed,
       count(*) FILTER (WHERE parsed AND has_user) AS user_id,
       count(*) FILTER (WHERE parsed AND has_item) AS item_id,
       count(*) FILTER (WHERE parsed AND has_ts) AS ts
FROM checked;
