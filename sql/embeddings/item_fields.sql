-- The text fields of every prepared item, by item_idx. An item with no text at all (no metadata
-- row, or every field empty) is titled by its item_id, so such items do not all share one text,
-- one vector and a perfect score with each other.
SELECT i.item_idx,
       CASE WHEN coalesce(m.title, '') = '' AND coalesce(m.description, '') = ''
                 AND coalesce(len(m.categories), 0) = 0
            THEN i.item_id ELSE m.title END AS title,
       m.categories,
       m.description
FROM item_index i
LEFT JOIN items m ON m.dataset = i.dataset AND m.item_id = i.item_id
WHERE i.dataset = $dataset
ORDER BY i.item_idx
