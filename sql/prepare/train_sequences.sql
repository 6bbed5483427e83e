-- SASRec training input: each user's train-split items in order (valid/test items never enter).
SELECT user_idx, list(item_idx ORDER BY pos) AS items
FROM sequences
WHERE dataset = $dataset AND split = 'train'
GROUP BY user_idx
ORDER BY user_idx;
