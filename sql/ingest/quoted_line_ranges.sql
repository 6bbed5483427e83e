-- Candidates for CSV records whose quoted field holds a newline: lines with an odd number of
-- quotes open or close such a record. Returns every line from each odd-quote line through the
-- next one when that is at most $max_span lines on, so Python can pair and check them.
WITH odd AS (
    SELECT line_no FROM raw_lines
    WHERE line_no > $skip AND contains(raw, '"')
      AND (length(raw) - length(replace(raw, '"', ''))) % 2 = 1
), ranges AS (
    SELECT line_no AS first, lead(line_no) OVER (ORDER BY line_no) AS last FROM odd
)
SELECT DISTINCT l.line_no, l.raw, l.line_no IN (SELECT line_no FROM odd) AS odd
FROM ranges r JOIN raw_lines l ON l.line_no BETWEEN r.first AND r.last
WHERE r.last - r.first <= $max_span
ORDER BY l.line_no;
