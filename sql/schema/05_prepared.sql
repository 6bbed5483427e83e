-- Prepared sequences: k-core filtered, ordered by (ts, item_idx), with a split label per event.
CREATE TABLE IF NOT EXISTS item_index (
    dataset  VARCHAR NOT NULL,
    item_id  VARCHAR NOT NULL,
    item_idx INTEGER NOT NULL            -- dense, 1..n_items (0 is left for padding)
);
CREATE TABLE IF NOT EXISTS sequences (
    dataset  VARCHAR NOT NULL,
    user_id  VARCHAR NOT NULL,
    user_idx INTEGER NOT NULL,
    pos      INTEGER NOT NULL,           -- 1-based position in the user's ordered sequence
    item_idx INTEGER NOT NULL,
    ts       TIMESTAMP NOT NULL,
    split    VARCHAR NOT NULL            -- train | valid | test
);
CREATE TABLE IF NOT EXISTS prepare_runs (
    dataset      VARCHAR NOT NULL,
    params_json  VARCHAR NOT NULL,
    stats_json   VARCHAR NOT NULL,
    parquet_dir  VARCHAR NOT NULL,
    created_at   TIMESTAMP NOT NULL
);
