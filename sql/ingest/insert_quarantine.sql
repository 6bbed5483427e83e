-- Bad rows of this batch, kept with file, line and reason.
INSERT INTO quarantine
SELECT $batch_id, $dataset, $path, line_no, left(raw, 10000), reason FROM checked WHERE reason IS NOT NULL
UNION ALL
SELECT $batch_id, $dataset, $path, line_no, left(raw, 10000), reason FROM rejected;
