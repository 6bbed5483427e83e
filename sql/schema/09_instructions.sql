-- Instruction builds that passed the leakage audit: where the Parquet is and what it came from.
CREATE TABLE IF NOT EXISTS instruction_builds (
    build_id      VARCHAR NOT NULL,
    dataset       VARCHAR NOT NULL,
    sid_version   VARCHAR NOT NULL,
    cooccurrence_snapshot BIGINT NOT NULL,
    semantic_snapshot     BIGINT NOT NULL,
    params_json   VARCHAR NOT NULL,
    counts_json   VARCHAR NOT NULL,
    audit_json    VARCHAR NOT NULL,
    path          VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
