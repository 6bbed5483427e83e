-- Every item's neighbours ranked by weight, then popularity (descending), then item index;
-- the top $top_k kept (0 keeps all). Symmetric pairs are expanded to both directions here.
CREATE OR REPLACE TEMP TABLE rel_ranked AS
WITH both_ways AS (
    SELECT a AS src, b AS dst, n, w FROM rel_pairs
    UNION ALL
    SELECT b, a, n, w FROM rel_pairs WHERE NOT $directed
)
SELECT src, dst, n, w / $lcm AS weight,
       CAST(row_number() OVER (PARTITION BY src ORDER BY w DESC, p.pop DESC, dst) AS INTEGER) AS rank
FROM both_ways JOIN rel_pop p ON p.item_idx = dst
QUALIFY $top_k = 0 OR rank <= $top_k;
