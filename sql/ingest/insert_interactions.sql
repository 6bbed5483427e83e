-- Good events of this batch, minus exact duplicates (within the batch, where the first line
-- counts, and already loaded).
INSERT INTO interactions
SELECT $dataset, n.user_id, n.item_id, n.ts, n.rating, $batch_id, n.line_no
FROM (
    SELECT user_id, item_id, ts, rating, min(line_no) AS line_no
    FROM checked WHERE reason IS NULL
    GROUP BY user_id, item_id, ts, rating
) n
WHERE NOT EXISTS (
    SELECT 1 FROM interactions o
    WHERE o.dataset = $dataset AND o.user_id = n.user_id AND o.item_id = n.item_id
      AND o.ts = n.ts AND o.rating IS NOT DISTINCT FROM n.rating
);
