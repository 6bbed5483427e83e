-- Prepared items of the dataset that have no SID in the version yet, in item_idx order.
SELECT i.item_idx, i.item_id
FROM item_index i
WHERE i.dataset = $dataset
  AND NOT EXISTS (SELECT 1 FROM semantic_ids s
                  WHERE s.sid_version = $sid_version AND s.item_id = i.item_id)
ORDER BY i.item_idx
