-- Item rows, each with the reason it cannot load (NULL when it can). The stage part is the staged
-- rows (the `stage` table, or the reader's SELECT run inside this one).
CREATE OR REPLACE TEMP TABLE checked AS
SELECT line_no, raw, trim(item_id, chr(32) || chr(9) || chr(13) || chr(10)) AS item_id,
       nullif(trim(title), '') AS title,
       nullif(trim(description), '') AS description, categories,
       parse_error IS NULL AS parsed, NULL::VARCHAR IS NOT NULL AS has_user,
       item_id IS NOT NULL AS has_item, NULL::VARCHAR IS NOT NULL AS has_ts,
       CASE WHEN parse_error IS NOT NULL THEN parse_error
            WHEN item_id IS NULL OR trim(item_id, chr(32) || chr(9) || chr(13) || chr(10)) = ''
            THEN 'empty item_id'
       END AS reason
FROM {stage};
