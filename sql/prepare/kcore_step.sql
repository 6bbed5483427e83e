-- One k-core pass: drop events of users or items with fewer than k events. Repeated until stable.
DELETE FROM kc
WHERE user_id IN (SELECT user_id FROM kc GROUP BY user_id HAVING count(*) < $k)
   OR item_id IN (SELECT item_id FROM kc GROUP BY item_id HAVING count(*) < $k);
