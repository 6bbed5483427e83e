-- Item popularity over the events a split may see (test: train + valid; valid: train).
SELECT item_idx, count(*) AS n FROM sequences
WHERE dataset = $dataset AND list_contains($splits, split)
GROUP BY item_idx;
