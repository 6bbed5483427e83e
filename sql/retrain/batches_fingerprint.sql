-- What a dataset's loaded ingest batches are, as one key: it changes when a file is loaded or
-- a batch dropped, and not when a rerun skips a file it has seen.
SELECT coalesce(md5(string_agg(batch_id::VARCHAR || ':' || sha256, ',' ORDER BY batch_id)), 'none')
FROM ingest_batches
WHERE dataset = $dataset AND finished_at IS NOT NULL AND error IS NULL;
