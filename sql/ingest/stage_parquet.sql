-- Parquet to staged rows; the row number stands in for the line number, the row as text for raw.
CREATE OR REPLACE TEMP TABLE stage AS
SELECT file_row_number + 1 AS line_no, p::VARCHAR AS raw, NULL::VARCHAR AS parse_error,
       struct_extract(p, $c_user_id)::VARCHAR AS user_id,
       struct_extract(p, $c_item_id)::VARCHAR AS item_id,
       struct_extract(p, $c_ts)::VARCHAR AS ts_raw,
       struct_extract(p, $c_rating)::VARCHAR AS rating_raw,
       struct_extract(p, $c_title)::VARCHAR AS title,
       struct_extract(p, $c_description)::VARCHAR AS description,
       struct_extract(p, $c_categories)::VARCHAR[] AS categories
FROM (SELECT * FROM read_parquet($path, file_row_number = true)) p;
