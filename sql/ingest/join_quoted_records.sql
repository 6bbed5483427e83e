-- CSV records whose quoted field holds a newline (registered as `quoted_rows`: first, last, raw)
-- become one line, numbered by their first physical line; the lines they span leave
-- `raw_lines`, and every other line keeps its own number.
CREATE OR REPLACE TEMP TABLE quoted_records AS SELECT first, last, raw FROM quoted_rows;
CREATE OR REPLACE TEMP TABLE quoted_lines AS
SELECT unnest(range(first, last + 1)) AS line_no FROM quoted_records;
CREATE OR REPLACE TEMP VIEW raw_lines AS
SELECT line_no, raw FROM raw_lines_read
WHERE line_no NOT IN (SELECT line_no FROM set_aside)
  AND line_no NOT IN (SELECT line_no FROM quoted_lines)
UNION ALL
SELECT first AS line_no, raw FROM quoted_records;
