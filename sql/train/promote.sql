-- Mark one model promoted; the dataset's other models of the same kind go back to trained.
UPDATE models SET status = CASE WHEN model_id = $model_id THEN 'promoted' ELSE 'trained' END
WHERE dataset = $dataset AND kind = (SELECT kind FROM models WHERE model_id = $model_id);
