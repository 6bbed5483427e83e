-- Per-batch counts of staged rows: all, good, bad.
SELECT count(*) AS rows_read,
       count(*) FILTER (WHERE reason IS NULL) AS rows_good,
       count(*) FILTER (WHERE reason IS NOT NULL) AS rows_bad
FROM checked;
