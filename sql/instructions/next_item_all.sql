-- Next item, IIRG's form: a user's first training item in, the following training items out.
-- Long sequences are cut into chunks of $history targets that overlap by one item (a chunk's
-- last item is the next chunk's input), so every training transition is in the loss once.
WITH train AS (
    SELECT user_idx, pos, item_idx FROM sequences WHERE dataset = $dataset AND split = 'train'
), chunks AS (
    SELECT user_idx, pos AS start FROM train WHERE (pos - 1) % $history = 0
)
SELECT c.user_idx,
       list(t.item_idx ORDER BY t.pos) FILTER (WHERE t.pos = c.start) AS input_items,
       list(t.pos ORDER BY t.pos) FILTER (WHERE t.pos = c.start) AS input_pos,
       list(t.item_idx ORDER BY t.pos) FILTER (WHERE t.pos > c.start) AS target_items,
       list(t.pos ORDER BY t.pos) FILTER (WHERE t.pos > c.start) AS target_pos
FROM chunks c JOIN train t ON t.user_idx = c.user_idx AND t.pos BETWEEN c.start AND c.start + $history
GROUP BY c.user_idx, c.start
HAVING count(*) > 1
ORDER BY c.user_idx, c.start;
