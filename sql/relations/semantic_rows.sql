-- The rows a semantic snapshot stores: cosine top-K from the registered Arrow table `rel_semantic`.
CREATE OR REPLACE TEMP TABLE rel_out AS
SELECT src, dst, CAST(NULL AS BIGINT) AS n, CAST(score AS DOUBLE) AS weight, rank,
       CAST(NULL AS INTEGER) AS via
FROM rel_semantic;
