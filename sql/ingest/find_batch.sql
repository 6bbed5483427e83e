-- An earlier batch of the same file content for this dataset, if any.
SELECT batch_id, path, finished_at FROM ingest_batches
WHERE dataset = $dataset AND kind = $kind AND sha256 = $sha256 AND finished_at IS NOT NULL
ORDER BY batch_id LIMIT 1;
