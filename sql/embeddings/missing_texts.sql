-- Distinct text hashes of the registered `emb_keys` that have no cached vector for this model.
SELECT DISTINCT k.text_sha256
FROM emb_keys k
WHERE NOT EXISTS (SELECT 1 FROM item_embeddings e
                  WHERE e.model = $model AND e.text_sha256 = k.text_sha256)
ORDER BY k.text_sha256
