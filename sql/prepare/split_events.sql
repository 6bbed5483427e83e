-- The events an evaluation on $split may learn from, in sequence order: the train split for
-- validation, train + valid for test (never a target of the split itself).
SELECT user_idx, item_idx FROM sequences
WHERE dataset = $dataset AND (split = 'train' OR (split = 'valid' AND $split = 'test'))
ORDER BY user_idx, pos;
