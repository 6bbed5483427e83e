-- An earlier finished batch of the same file content, read with the same options, for this
-- dataset: then the file is skipped.
SELECT batch_id, path, finished_at FROM ingest_batches
WHERE dataset = $dataset AND kind = $kind AND sha256 = $sha256 AND finished_at IS NOT NULL
  AND options IS NOT DISTINCT FROM $options
ORDER BY batch_id LIMIT 1;
