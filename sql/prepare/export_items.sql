-- The dense item index with the item text fields (for Parquet).
SELECT i.item_idx, i.item_id, m.title, m.description, m.categories
FROM idx i LEFT JOIN items m ON m.dataset = $dataset AND m.item_id = i.item_id
ORDER BY i.item_idx
