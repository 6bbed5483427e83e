-- Store freshly encoded vectors from the registered `emb_new`; a text already cached is kept.
INSERT OR IGNORE INTO item_embeddings
SELECT $model, text_sha256, emb, now()::TIMESTAMP FROM emb_new
