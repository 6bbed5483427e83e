-- JSON lines: each non-blank line is one document.
CREATE OR REPLACE TEMP TABLE docs AS
SELECT line_no, raw, raw AS doc_text
FROM raw_lines
WHERE raw IS NOT NULL AND trim(raw) <> '';
