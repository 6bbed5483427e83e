-- The rows a collaborative snapshot stores: ranked pairs plus any top-up rows.
CREATE OR REPLACE TEMP TABLE rel_out AS
SELECT src, dst, n, weight, rank, CAST(NULL AS INTEGER) AS via FROM rel_ranked
UNION ALL
SELECT src, dst, NULL, NULL, rank, via FROM rel_top_up WHERE $top_up;
