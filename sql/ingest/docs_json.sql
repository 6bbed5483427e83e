-- JSON lines: each non-blank line is one document (a view: the text is not copied).
CREATE OR REPLACE TEMP VIEW docs AS
SELECT line_no, raw, raw AS doc_text
FROM raw_lines
WHERE raw IS NOT NULL AND trim(raw) <> '';
