-- The dataset's events, the starting point of k-core filtering.
CREATE OR REPLACE TEMP TABLE kc AS
SELECT user_id, item_id, ts FROM interactions WHERE dataset = $dataset;
