-- Record a file that could not be read at all: a batch with its error and no rows. It never
-- counts as ingested (no finished_at), so a rerun tries the file again.
INSERT INTO ingest_batches (batch_id, dataset, kind, format, path, sha256, started_at, error)
VALUES (nextval('batch_id_seq'), $dataset, $kind, $format, $path, $sha256, now()::TIMESTAMP,
        $error)
RETURNING batch_id;
