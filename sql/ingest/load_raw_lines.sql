-- Every physical line of the file as one VARCHAR, in file order (insertion order is preserved),
-- so that rowid + 1 is the line number. Lines DuckDB cannot decode land in raw_rejects.
DROP TABLE IF EXISTS raw_rejects;
DROP TABLE IF EXISTS raw_rejects_scan;
CREATE OR REPLACE TEMP TABLE raw_read AS
SELECT raw
FROM read_csv($path, columns = {'raw': 'VARCHAR'}, delim = $nul, quote = '', escape = '',
              header = false, auto_detect = false, strict_mode = false, new_line = $new_line,
              encoding = $encoding, max_line_size = $max_line_size, compression = 'auto',
              ignore_errors = true, store_rejects = true,
              rejects_table = 'raw_rejects', rejects_scan = 'raw_rejects_scan');
