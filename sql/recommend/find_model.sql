-- A model to recommend with: the one named, or the dataset's champion, or its newest of a kind.
SELECT model_id, kind, path, status, params_json
FROM models
WHERE dataset = $dataset
  AND ($model_id IS NULL OR model_id = $model_id)
  AND ($kind IS NULL OR kind = $kind)
  AND (NOT $champion OR status = 'promoted')
ORDER BY created_at DESC
LIMIT 1;
