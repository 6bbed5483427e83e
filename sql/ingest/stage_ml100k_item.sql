-- ml-100k u.item: id|title|release|video release|url|19 genre flags -> staged item rows.
CREATE OR REPLACE TEMP TABLE stage AS
WITH split AS (
    SELECT line_no, raw, string_split(raw, '|') AS f
    FROM raw_lines
    WHERE raw IS NOT NULL AND trim(raw) <> ''
)
SELECT line_no, raw,
       CASE WHEN len(f) <> 24
            THEN 'expected 24 fields, found ' || len(f) || ' (truncated or malformed line)'
       END AS parse_error,
       NULL::VARCHAR AS user_id, f[1] AS item_id, NULL::VARCHAR AS ts_raw, NULL::VARCHAR AS rating_raw,
       f[2] AS title, NULL::VARCHAR AS description,
       list_filter(list_transform(range(1, 20), lambda i: CASE WHEN f[5 + i] = '1' THEN $genres[i] END),
                   lambda g: g IS NOT NULL) AS categories
FROM split;
