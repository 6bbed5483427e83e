-- Every item's neighbours ranked by weight, then popularity (descending), then item index;
-- the top $top_k kept (0 keeps all). Symmetric pairs are expanded to both directions here.
-- Ranking all pairs would sort every pair; instead each item's k-th largest weight is found
-- first (a top-k aggregate), and only pairs at or above it (ties included) are sorted.
-- Only sources in partition $part of $parts are ranked (1 part: all of them); `ranked_collect`
-- gathers the parts.
CREATE OR REPLACE TEMP TABLE rel_ranked_part AS
WITH ends AS (
    SELECT a AS src, w FROM rel_pairs
    UNION ALL
    SELECT b, w FROM rel_pairs WHERE NOT $directed
), threshold AS (
    SELECT src, CASE WHEN $top_k > 0 THEN list_last(max(w, greatest($top_k, 1))) ELSE 0 END AS t
    FROM ends WHERE src % $parts = $part GROUP BY src
), candidates AS (
    SELECT p.a AS src, p.b AS dst, p.n, p.w
    FROM rel_pairs p JOIN threshold h ON h.src = p.a WHERE p.w >= h.t
    UNION ALL
    SELECT p.b, p.a, p.n, p.w
    FROM rel_pairs p JOIN threshold h ON h.src = p.b WHERE NOT $directed AND p.w >= h.t
)
SELECT src, dst, n, w / $lcm AS weight,
       CAST(row_number() OVER (PARTITION BY src ORDER BY w DESC, p.pop DESC, dst) AS INTEGER) AS rank
FROM candidates JOIN rel_pop p ON p.item_idx = dst
QUALIFY $top_k = 0 OR rank <= $top_k;
