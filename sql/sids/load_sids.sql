-- The SIDs of a version keyed by each item's current item_idx (joined on the stable item_id).
SELECT i.item_idx, s.sid
FROM semantic_ids s
JOIN item_index i ON i.dataset = s.dataset AND i.item_id = s.item_id
WHERE s.sid_version = $sid_version AND s.dataset = $dataset
ORDER BY i.item_idx
