-- One model's recommendations, replaced whole from the registered Arrow table `recs`.
DELETE FROM recommendations WHERE dataset = $dataset AND model_id = $model_id;
INSERT INTO recommendations
SELECT $dataset, $model_id, user_id, rank, item_id, score, $created_at FROM recs;
