-- The catalogue's item ids by dense index (index 0, padding, has none).
SELECT item_idx, item_id FROM item_index WHERE dataset = $dataset ORDER BY item_idx;
