-- One JSON object keyed by item id (P5/IIRG item file): one document per key, the key
-- added as "item_id". The entry's ordinal stands in for its line number.
CREATE OR REPLACE TEMP TABLE docs_object AS
SELECT row_number() OVER () AS line_no,
       key || ': ' || value::VARCHAR AS raw,
       CASE WHEN json_type(value) = 'OBJECT'
            THEN json_merge_patch(value, json_object('item_id', key))::VARCHAR END AS doc_text
FROM json_each((SELECT content FROM read_text($path)));
CREATE OR REPLACE TEMP VIEW docs AS SELECT line_no, raw, doc_text FROM docs_object;
