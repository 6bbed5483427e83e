-- Every (user, position, item) a next-item sample uses, against the prepared sequences: a
-- violation is a held-out event ($held_out splits) or an event the user does not have there.
WITH used AS (
    SELECT key, user_idx,
           unnest(list_concat(input_pos, target_pos)) AS pos,
           unnest(list_concat(input_items, target_items)) AS item
    FROM audit_samples WHERE user_idx IS NOT NULL
), judged AS (
    SELECT u.key, s.split IS NULL OR s.item_idx <> u.item
                  OR list_contains($held_out, s.split) AS bad
    FROM used u LEFT JOIN sequences s
      ON s.dataset = $dataset AND s.user_idx = u.user_idx AND s.pos = u.pos
)
SELECT count(*) AS checked, count(*) FILTER (WHERE bad) AS violations,
       any_value(key) FILTER (WHERE bad) AS example
FROM judged;
