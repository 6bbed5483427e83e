-- One row per ingested file: what was read, what loaded, what went to quarantine.
CREATE SEQUENCE IF NOT EXISTS batch_id_seq START 1;
CREATE TABLE IF NOT EXISTS ingest_batches (
    batch_id         BIGINT PRIMARY KEY,
    dataset          VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,      -- interactions | items
    format           VARCHAR NOT NULL,
    path             VARCHAR NOT NULL,
    sha256           VARCHAR NOT NULL,
    rows_read        BIGINT,
    rows_loaded      BIGINT,
    rows_quarantined BIGINT,
    rows_duplicate   BIGINT,
    started_at       TIMESTAMP NOT NULL,
    finished_at      TIMESTAMP
);
-- why a file could not be read at all (a broken gzip, an unreadable file); its batch has no rows
ALTER TABLE ingest_batches ADD COLUMN IF NOT EXISTS error VARCHAR;
-- a hash of the options that change what a file loads as (format source, mapping, unit,
-- encoding, timestamp window): the same bytes under other options are another batch
ALTER TABLE ingest_batches ADD COLUMN IF NOT EXISTS options VARCHAR;
