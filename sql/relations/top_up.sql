-- IIRG's top-up: an item with fewer than $top_k collaborative neighbours gets the collaborative
-- neighbours of its semantic neighbours, in (semantic rank, collaborative rank) order, skipping
-- itself and items it already has. Rows carry the semantic neighbour they came `via`.
CREATE OR REPLACE TEMP TABLE rel_top_up AS
WITH have AS (
    SELECT src, count(*) AS c FROM rel_ranked GROUP BY src
), need AS (
    SELECT i.item_idx AS src, coalesce(h.c, 0) AS c
    FROM item_index i LEFT JOIN have h ON h.src = i.item_idx
    WHERE i.dataset = $dataset AND coalesce(h.c, 0) < $top_k
), candidates AS (
    SELECT n.src, r.dst, s.dst AS via, s.rank AS s_rank, r.rank AS c_rank
    FROM need n
    JOIN semantic_neighbors s ON s.snapshot_id = $semantic_id AND s.src = n.src
    JOIN rel_ranked r ON r.src = s.dst
    WHERE r.dst <> n.src
      AND NOT EXISTS (SELECT 1 FROM rel_ranked x WHERE x.src = n.src AND x.dst = r.dst)
), first_seen AS (
    SELECT * FROM candidates
    QUALIFY row_number() OVER (PARTITION BY src, dst ORDER BY s_rank, c_rank) = 1
)
SELECT f.src, f.dst, f.via,
       CAST(n.c + row_number() OVER (PARTITION BY f.src ORDER BY f.s_rank, f.c_rank, f.dst)
            AS INTEGER) AS rank
FROM first_seen f JOIN need n USING (src)
QUALIFY rank <= $top_k;
