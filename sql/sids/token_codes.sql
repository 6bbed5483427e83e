-- Every (position, code) a tokenizer needs for a version: the codebooks' codes at positions
-- 0..L-1, and the disambiguation codes in use at position L.
SELECT level - 1 AS pos, code FROM sid_centroids WHERE sid_version = $sid_version
UNION
SELECT DISTINCT $levels AS pos, codes[$levels + 1] AS code FROM semantic_ids
WHERE sid_version = $sid_version
ORDER BY pos, code
