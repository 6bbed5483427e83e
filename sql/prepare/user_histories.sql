-- Evaluation inputs for one split ($split = 'valid' | 'test'): one row per target event of that
-- split, with the user's events of the EARLIER splits before it as the history, ordered by pos
-- (valid: train events; test: train + valid events, so the test input includes the valid item).
-- Leave-one-out gives one row per user; a temporal split gives one row per event of the split,
-- all of a user's rows sharing the same history (other events of the same split are never
-- inputs: they lie in the held-out period). Users without a target in $split have no row.
WITH targets AS (
    SELECT user_idx, pos, item_idx FROM sequences
    WHERE dataset = $dataset AND split = $split
), inputs AS (
    SELECT user_idx, pos, item_idx FROM sequences
    WHERE dataset = $dataset AND (split = 'train' OR (split = 'valid' AND $split = 'test'))
)
SELECT t.user_idx, t.pos, t.item_idx AS target,
       coalesce(list(i.item_idx ORDER BY i.pos) FILTER (WHERE i.item_idx IS NOT NULL),
                []::INTEGER[]) AS history
FROM targets t LEFT JOIN inputs i ON i.user_idx = t.user_idx AND i.pos < t.pos
GROUP BY t.user_idx, t.pos, t.item_idx
ORDER BY t.user_idx, t.pos;
