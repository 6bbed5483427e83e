-- What a snapshot was computed from.
SELECT count(*) AS events, count(DISTINCT user_idx) AS users, count(DISTINCT item_idx) AS items
FROM rel_input;
