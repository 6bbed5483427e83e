-- Good items of this batch: the last line per item wins, and replaces any earlier row.
CREATE OR REPLACE TEMP TABLE new_items AS
SELECT item_id, title, description, categories FROM checked WHERE reason IS NULL
QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY line_no DESC) = 1;
DELETE FROM items WHERE dataset = $dataset AND item_id IN (SELECT item_id FROM new_items);
INSERT INTO items SELECT $dataset, item_id, title, description, categories, $batch_id FROM new_items;
