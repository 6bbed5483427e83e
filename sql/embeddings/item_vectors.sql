-- Each item's cached vector, by item_idx, joining the registered `emb_keys` on its text hash.
SELECT k.item_idx, e.emb
FROM emb_keys k
JOIN item_embeddings e ON e.model = $model AND e.text_sha256 = k.text_sha256
ORDER BY k.item_idx
