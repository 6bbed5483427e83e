-- The batches an ingest --force replaces: this dataset's earlier batches of the same content or
-- the same path, under any options.
SELECT batch_id FROM ingest_batches
WHERE dataset = $dataset AND kind = $kind AND (sha256 = $sha256 OR path = $path)
ORDER BY batch_id;
