-- Rows that could not be loaded, with where they came from and why.
CREATE TABLE IF NOT EXISTS quarantine (
    batch_id BIGINT NOT NULL,
    dataset  VARCHAR NOT NULL,
    path     VARCHAR NOT NULL,
    line_no  BIGINT,
    raw      VARCHAR,
    reason   VARCHAR NOT NULL
);
