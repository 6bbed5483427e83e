-- Line numbers when every line was read: the committed temp table's rowid is the file order.
CREATE OR REPLACE TEMP VIEW raw_lines_read AS SELECT rowid + 1 AS line_no, raw FROM raw_read;
