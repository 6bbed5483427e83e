-- The dataset's item index as one key: a model scored by item index (SASRec, the SID
-- transformer) is only valid while this stays the same.
SELECT coalesce(md5(string_agg(item_id || '=' || item_idx::VARCHAR, ',' ORDER BY item_idx)), 'none')
FROM item_index WHERE dataset = $dataset;
