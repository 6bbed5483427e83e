-- Python-literal lines (Amazon 2014 metadata): converted to JSON by a vectorized UDF;
-- a line that is not a valid literal converts to NULL and is quarantined as broken.
CREATE OR REPLACE TEMP TABLE docs_converted AS
SELECT line_no, raw, py_literal_to_json(raw) AS doc_text
FROM raw_lines
WHERE raw IS NOT NULL AND trim(raw) <> '';
CREATE OR REPLACE TEMP VIEW docs AS SELECT line_no, raw, doc_text FROM docs_converted;
