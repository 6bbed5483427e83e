-- JSON documents (the `docs` view) as staged rows: fields by JSON path; a list-valued
-- description is joined, and categories may be a string, a list, or a list of lists (Amazon
-- 2014). One SELECT, run inside the check that consumes it (no table of its own).
WITH d AS (
    SELECT line_no, raw, CASE WHEN json_valid(doc_text) THEN doc_text::JSON END AS doc
    FROM docs
)
SELECT line_no, raw,
       CASE WHEN doc IS NULL THEN $invalid_reason
            WHEN json_type(doc) <> 'OBJECT' THEN 'record is not a JSON object'
            -- ids are strings or integers: an object, list, boolean or fraction is no id
            WHEN json_type(doc, $c_user_id) IN ('OBJECT', 'ARRAY', 'BOOLEAN', 'DOUBLE')
            THEN 'user_id is a JSON ' || lower(json_type(doc, $c_user_id))
                 || ', not a string or integer'
            WHEN json_type(doc, $c_item_id) IN ('OBJECT', 'ARRAY', 'BOOLEAN', 'DOUBLE')
            THEN 'item_id is a JSON ' || lower(json_type(doc, $c_item_id))
                 || ', not a string or integer'
       END AS parse_error,
       json_extract_string(doc, $c_user_id) AS user_id,
       json_extract_string(doc, $c_item_id) AS item_id,
       json_extract_string(doc, $c_ts) AS ts_raw,
       json_extract_string(doc, $c_rating) AS rating_raw,
       json_extract_string(doc, $c_title) AS title,
       CASE WHEN json_type(doc, $c_description) = 'ARRAY'
            THEN array_to_string(TRY_CAST(json_extract(doc, $c_description) AS VARCHAR[]), ' ')
            ELSE json_extract_string(doc, $c_description) END AS description,
       CASE WHEN json_type(doc, $c_categories || '[0]') = 'ARRAY'
            THEN flatten(TRY_CAST(json_extract(doc, $c_categories) AS VARCHAR[][]))
            WHEN json_type(doc, $c_categories) = 'ARRAY'
            THEN TRY_CAST(json_extract(doc, $c_categories) AS VARCHAR[])
            WHEN json_type(doc, $c_categories) = 'VARCHAR'
            THEN [json_extract_string(doc, $c_categories)] END AS categories
FROM d
