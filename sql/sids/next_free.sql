-- The next free disambiguation code of every L-code prefix already in the version.
SELECT codes[1:$levels] AS prefix, max(codes[$levels + 1]) + 1 AS next_free
FROM semantic_ids WHERE sid_version = $sid_version
GROUP BY 1
