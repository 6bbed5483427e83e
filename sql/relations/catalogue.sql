-- Every prepared item of the dataset, in index order: the items IIRG's top-up visits.
SELECT item_idx FROM item_index WHERE dataset = $dataset ORDER BY item_idx;
