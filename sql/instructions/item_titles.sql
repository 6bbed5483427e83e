-- What an item is called in a prompt: its title, else its id.
SELECT i.item_idx, coalesce(nullif(trim(m.title), ''), i.item_id) AS title
FROM item_index i LEFT JOIN items m ON m.dataset = i.dataset AND m.item_id = i.item_id
WHERE i.dataset = $dataset
ORDER BY i.item_idx;
