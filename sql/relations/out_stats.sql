-- What a snapshot holds: rows, items with neighbours, full lists, and top-up rows.
WITH lists AS (SELECT src, count(*) AS len FROM rel_out GROUP BY src)
SELECT (SELECT count(*) FROM rel_out) AS rows,
       (SELECT count(*) FROM lists) AS items_with_neighbors,
       (SELECT coalesce(avg(len), 0) FROM lists) AS mean_list_length,
       (SELECT count(*) FROM rel_out WHERE via IS NOT NULL) AS top_up_rows,
       (SELECT count(DISTINCT src) FROM rel_out WHERE via IS NOT NULL) AS items_topped_up;
