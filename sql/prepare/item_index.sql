-- Dense item index 1..n over the surviving items; numeric ids sort as numbers.
CREATE OR REPLACE TEMP TABLE idx AS
SELECT item_id,
       CAST(row_number() OVER (ORDER BY TRY_CAST(item_id AS BIGINT) NULLS LAST, item_id) AS INTEGER)
           AS item_idx
FROM (SELECT DISTINCT item_id FROM kc);
