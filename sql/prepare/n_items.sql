-- Catalogue size of a prepared dataset: item_idx is dense 1..n_items (0 is padding).
SELECT coalesce(max(item_idx), 0) AS n_items FROM item_index WHERE dataset = $dataset;
