-- Shard results summed: pair counts are additive over users, so this equals one unsharded run.
CREATE OR REPLACE TEMP TABLE rel_pairs AS
SELECT a, b, sum(n)::BIGINT AS n, sum(w)::BIGINT AS w
FROM read_parquet($files)
GROUP BY a, b;
