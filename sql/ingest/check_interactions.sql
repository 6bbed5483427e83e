-- Typed interaction rows, each with the reason it cannot load (NULL when it can).
CREATE OR REPLACE TEMP TABLE checked AS
WITH typed AS (
    SELECT *,
           CASE $ts_unit
               WHEN 'iso' THEN TRY_CAST(ts_raw AS TIMESTAMP)
               ELSE try(make_timestamp(CAST(TRY_CAST(ts_raw AS DOUBLE)
                        * CASE $ts_unit WHEN 's' THEN 1e6 WHEN 'ms' THEN 1e3 ELSE 1 END AS BIGINT)))
           END AS ts,
           TRY_CAST(rating_raw AS DOUBLE) AS rating
    FROM stage
)
SELECT line_no, raw, trim(user_id) AS user_id, trim(item_id) AS item_id, ts, rating,
       CASE WHEN parse_error IS NOT NULL THEN parse_error
            WHEN user_id IS NULL OR trim(user_id) = '' THEN 'empty user_id'
            WHEN item_id IS NULL OR trim(item_id) = '' THEN 'empty item_id'
            WHEN ts_raw IS NULL OR trim(ts_raw) = '' THEN 'missing timestamp'
            WHEN ts IS NULL THEN 'unparseable timestamp ' || ts_raw || ' (unit ' || $ts_unit || ')'
            WHEN rating IS NULL AND trim(coalesce(rating_raw, '')) <> ''
            THEN 'rating is not a number: ' || rating_raw
       END AS reason
FROM typed;
