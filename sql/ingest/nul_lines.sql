-- Lines holding a NUL byte (found in Python, registered as `nul_rows`): the reader cuts a line
-- there, so its short remainder must not load as a row. They go to quarantine whole; every
-- stage reads `raw_lines`, the lines without one.
CREATE OR REPLACE TEMP TABLE nul_found AS SELECT line_no, raw FROM nul_rows;
INSERT INTO rejected SELECT line_no, raw, 'line contains a NUL byte' FROM nul_found;
CREATE OR REPLACE TEMP VIEW raw_lines AS
SELECT line_no, raw FROM raw_lines_read
WHERE line_no NOT IN (SELECT line_no FROM nul_found);
