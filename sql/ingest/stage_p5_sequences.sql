-- P5/IIRG *_sequential_data.txt: "user item item ..." per line. The file has no timestamps, so an
-- event's position in its line becomes its timestamp (seconds after the epoch), which keeps order.
CREATE OR REPLACE TEMP TABLE stage AS
WITH t AS (
    SELECT line_no, raw, string_split(trim(regexp_replace(raw, '\s+', ' ', 'g')), ' ') AS tok
    FROM raw_lines
    WHERE raw IS NOT NULL AND trim(raw) <> ''
)
SELECT line_no, raw, NULL::VARCHAR AS parse_error, tok[1] AS user_id,
       unnest(tok[2:]) AS item_id, unnest(range(1, len(tok)))::VARCHAR AS ts_raw,
       NULL::VARCHAR AS rating_raw, NULL::VARCHAR AS title, NULL::VARCHAR AS description,
       NULL::VARCHAR[] AS categories
FROM t WHERE len(tok) >= 2
UNION ALL
SELECT line_no, raw, 'sequence line has a user but no items', tok[1], NULL, NULL, NULL, NULL, NULL, NULL
FROM t WHERE len(tok) < 2;
