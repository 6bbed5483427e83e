-- Line numbers for the lines that were read: the k-th read line is the k-th line number that is
-- not a rejected line. r_j - j (j-th reject) counts the read lines before it, so an ASOF join
-- finds how many rejects precede each read line.
CREATE OR REPLACE TEMP VIEW raw_lines_read AS
WITH rej AS (
    SELECT line - row_number() OVER (ORDER BY line) AS before_n,
           row_number() OVER (ORDER BY line) AS n_rejects
    FROM raw_rejects
), steps AS (
    SELECT before_n, max(n_rejects) AS n_rejects FROM rej GROUP BY before_n
), r AS (
    SELECT rowid + 1 AS ord, raw FROM raw_read
)
SELECT r.ord + coalesce(s.n_rejects, 0) AS line_no, r.raw
FROM r ASOF LEFT JOIN steps s ON r.ord > s.before_n;
