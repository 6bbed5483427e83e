-- Record a batch's counts when its rows are in.
UPDATE ingest_batches
SET rows_read = $rows_read, rows_loaded = $rows_loaded, rows_quarantined = $rows_quarantined,
    rows_duplicate = $rows_duplicate, finished_at = now()::TIMESTAMP
WHERE batch_id = $batch_id;
