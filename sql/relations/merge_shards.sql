-- Shard results summed: pair counts are additive over users, so this equals one unsharded run.
-- Only pairs with an end in source partition $part of $parts are summed (a symmetric pair is
-- stored once, as (least, greatest), so either end may be the source): memory per part is a
-- share of the pairs, not all of them.
CREATE OR REPLACE TEMP TABLE rel_pairs AS
SELECT a, b, sum(n)::BIGINT AS n, sum(w)::BIGINT AS w
FROM read_parquet($files)
WHERE a % $parts = $part OR (NOT $directed AND b % $parts = $part)
GROUP BY a, b;
