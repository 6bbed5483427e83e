-- Each item's ranked collaborative neighbours (from `rel_ranked`), best first, for the top-up.
SELECT src, list(dst ORDER BY rank) AS dsts FROM rel_ranked GROUP BY src;
