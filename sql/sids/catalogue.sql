-- The prepared items of a dataset with their ids, in item_idx order (the order SIDs are given in).
SELECT item_idx, item_id FROM item_index WHERE dataset = $dataset ORDER BY item_idx
