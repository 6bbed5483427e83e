-- Text embeddings cache: one vector per (model, text); a rerun encodes only texts not seen before.
-- `model` is the name the user gave (asset name, local path or hub id); `text_sha256` hashes the
-- exact item text that was encoded (tasks.embeddings.item_text), so edited items re-encode.
CREATE TABLE IF NOT EXISTS item_embeddings (
    model       VARCHAR NOT NULL,
    text_sha256 VARCHAR NOT NULL,
    emb         FLOAT[] NOT NULL,          -- L2-normalized
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (model, text_sha256)
);
