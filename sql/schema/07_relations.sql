-- Relation snapshots: one row per (dataset, kind, as_of, params); pairs live in one table a kind.
-- src/dst are item_idx values of the prepared item_index (join it for item ids).
CREATE SEQUENCE IF NOT EXISTS snapshot_id_seq START 1;
CREATE TABLE IF NOT EXISTS relation_snapshots (
    snapshot_id  BIGINT NOT NULL,
    dataset      VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,       -- transitions | cooccurrence | semantic
    as_of        TIMESTAMP,              -- NULL: all training events (semantic: time-independent)
    params_json  VARCHAR NOT NULL,
    params_hash  VARCHAR NOT NULL,
    rows         BIGINT NOT NULL,
    stats_json   VARCHAR NOT NULL,
    seconds      DOUBLE NOT NULL,
    created_at   TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS transitions (
    snapshot_id BIGINT NOT NULL, src INTEGER NOT NULL, dst INTEGER NOT NULL,
    n BIGINT, weight DOUBLE, rank INTEGER NOT NULL, via INTEGER
);
CREATE TABLE IF NOT EXISTS cooccurrence (
    snapshot_id BIGINT NOT NULL, src INTEGER NOT NULL, dst INTEGER NOT NULL,
    n BIGINT, weight DOUBLE, rank INTEGER NOT NULL,
    via INTEGER                           -- top-up rows: the semantic neighbour they came from
);
CREATE TABLE IF NOT EXISTS semantic_neighbors (
    snapshot_id BIGINT NOT NULL, src INTEGER NOT NULL, dst INTEGER NOT NULL,
    n BIGINT, weight DOUBLE, rank INTEGER NOT NULL, via INTEGER
);
