-- The dataset's events, the starting point of k-core filtering (with their file position).
CREATE OR REPLACE TEMP TABLE kc AS
SELECT user_id, item_id, ts, batch_id, line_no FROM interactions WHERE dataset = $dataset;
