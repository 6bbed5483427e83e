-- Lines set aside in Python (registered as `aside_rows`: line, raw, reason): lines that do not
-- decode in the file's encoding, and lines holding a NUL byte (the reader would cut them there
-- and load the short remainder). They go to quarantine whole; every stage reads `raw_lines`,
-- the lines that remain.
CREATE OR REPLACE TEMP TABLE set_aside AS SELECT line_no, raw, reason FROM aside_rows;
INSERT INTO rejected SELECT line_no, raw, reason FROM set_aside;
CREATE OR REPLACE TEMP VIEW raw_lines AS
SELECT line_no, raw FROM raw_lines_read
WHERE line_no NOT IN (SELECT line_no FROM set_aside);
