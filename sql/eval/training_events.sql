-- The events a split's instances are categorized against (from `rel_input`), in sequence order.
SELECT user_idx, item_idx FROM rel_input ORDER BY user_idx, pos;
