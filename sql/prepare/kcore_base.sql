-- The dataset's events, the starting point of k-core filtering (with their file position).
-- A rating threshold, when set, comes first (as RecBole's val_interval before its k-core); an
-- event without a rating does not pass it.
CREATE OR REPLACE TEMP TABLE kc AS
SELECT user_id, item_id, ts, batch_id, line_no FROM interactions
WHERE dataset = $dataset AND ($min_rating IS NULL OR rating >= $min_rating);
