-- How many well-formed records carry each field: a required field that no record has means the
-- mapping or the format is wrong, which is fatal rather than a quarantine matter.
SELECT count(*) AS n_records,
       count(*) FILTER (WHERE parse_error IS NULL) AS n_parsed,
       count(user_id) FILTER (WHERE parse_error IS NULL) AS user_id,
       count(item_id) FILTER (WHERE parse_error IS NULL) AS item_id,
       count(ts_raw) FILTER (WHERE parse_error IS NULL) AS ts
FROM stage;
