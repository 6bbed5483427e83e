-- Lines the reader could not decode, as quarantine rows.
CREATE OR REPLACE TEMP TABLE rejected AS
SELECT line AS line_no,
       CASE WHEN trim(csv_line, chr(10) || chr(13) || '?') = '' THEN NULL ELSE csv_line END AS raw,
       CASE error_type
           WHEN 'INVALID ENCODING' THEN 'invalid bytes for encoding ' || $encoding || ' (set --encoding)'
           WHEN 'LINE SIZE OVER MAXIMUM' THEN 'line longer than the maximum line size'
           ELSE lower(error_type) || ': ' || error_message
       END AS reason
FROM raw_rejects
ORDER BY line;
