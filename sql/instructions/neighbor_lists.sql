-- Each item's first $n neighbours of a relation snapshot, in rank order (top-up rows included).
SELECT src AS item, list(dst ORDER BY rank) AS targets
FROM {table}
WHERE snapshot_id = $snapshot_id AND rank <= $n
GROUP BY src
ORDER BY src;
