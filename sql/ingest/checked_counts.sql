-- Per-batch counts: lines staged, good rows, bad rows, and how many have each required field.
SELECT count(DISTINCT line_no) AS rows_read,
       count(*) FILTER (WHERE reason IS NULL) AS rows_good,
       count(DISTINCT line_no) FILTER (WHERE reason IS NOT NULL) AS rows_bad
FROM checked;
