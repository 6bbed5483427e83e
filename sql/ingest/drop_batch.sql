-- Remove one batch and everything it loaded (events, items it last wrote, quarantined rows).
DELETE FROM interactions WHERE batch_id = $batch_id;
DELETE FROM items WHERE batch_id = $batch_id;
DELETE FROM quarantine WHERE batch_id = $batch_id;
DELETE FROM ingest_batches WHERE batch_id = $batch_id;
