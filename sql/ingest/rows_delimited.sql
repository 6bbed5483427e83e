-- Delimited text (TSV, '::', CSV) as staged rows: one SELECT, run inside the check that
-- consumes it (no table of its own). Lines without a quote are a plain split; only lines with a
-- quote go through the quote-aware regex (a separate branch, so the regex never runs on plain
-- lines).
WITH lines AS (
    SELECT line_no, raw, $quote_aware AND contains(raw, '"') AS quoted
    FROM raw_lines
    WHERE line_no > $skip AND raw IS NOT NULL AND trim(raw) <> ''
), split AS (
    SELECT line_no, raw, string_split(raw, $delim) AS f, false AS bad_quotes
    FROM lines WHERE NOT quoted
    UNION ALL
    SELECT line_no, raw,
           list_transform(regexp_extract_all(raw || $delim, $field_re, 1),
               lambda x: CASE WHEN starts_with(x, '"') THEN replace(x[2:-2], '""', '"') ELSE x END),
           length(array_to_string(regexp_extract_all(raw || $delim, $field_re, 0), ''))
               <> length(raw) + length($delim)
    FROM lines WHERE quoted
)
SELECT line_no, raw,
       CASE WHEN bad_quotes THEN 'unbalanced quotes'
            WHEN len(f) <> $n_fields
            THEN 'expected ' || $n_fields || ' fields, found ' || len(f) || ' (truncated or malformed line)'
       END AS parse_error,
       f[$c_user_id] AS user_id, f[$c_item_id] AS item_id, f[$c_ts] AS ts_raw,
       f[$c_rating] AS rating_raw, f[$c_title] AS title, f[$c_description] AS description,
       CASE WHEN f[$c_categories] <> '' THEN string_split(f[$c_categories], $cat_sep) END AS categories
FROM split
