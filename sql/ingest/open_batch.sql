-- Register a batch; it commits together with its rows or not at all.
INSERT INTO ingest_batches (batch_id, dataset, kind, format, path, sha256, started_at, options)
VALUES (nextval('batch_id_seq'), $dataset, $kind, $format, $path, $sha256, now()::TIMESTAMP,
        $options)
RETURNING batch_id;
