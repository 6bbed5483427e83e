-- The batches of a dataset, newest last: what `hoprec batches list` shows.
SELECT batch_id, kind, format, path, rows_read, rows_loaded, rows_quarantined, rows_duplicate,
       CASE WHEN error IS NOT NULL THEN 'failed' WHEN finished_at IS NULL THEN 'unfinished'
            ELSE 'loaded' END AS status,
       coalesce(error, '') AS error, started_at
FROM ingest_batches WHERE dataset = $dataset ORDER BY batch_id;
