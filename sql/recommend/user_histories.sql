-- Every prepared user's whole sequence (train, valid and test events), ordered by position:
-- what a batch recommendation continues.
SELECT user_idx, any_value(user_id) AS user_id, list(item_idx ORDER BY pos) AS history
FROM sequences
WHERE dataset = $dataset
GROUP BY user_idx
ORDER BY user_idx;
