-- Good events of this batch, minus exact duplicates (within the batch and already loaded).
INSERT INTO interactions
SELECT $dataset, n.user_id, n.item_id, n.ts, n.rating, $batch_id
FROM (SELECT DISTINCT user_id, item_id, ts, rating FROM checked WHERE reason IS NULL) n
WHERE NOT EXISTS (
    SELECT 1 FROM interactions o
    WHERE o.dataset = $dataset AND o.user_id = n.user_id AND o.item_id = n.item_id
      AND o.ts = n.ts AND o.rating IS NOT DISTINCT FROM n.rating
);
