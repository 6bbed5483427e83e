-- Next item, sliding form: every training event after the first is a target, its input the
-- user's previous $history training events. Only `train` events are read, so no validation or
-- test target is ever an input or an output.
SELECT user_idx, input_items, input_pos, [item_idx] AS target_items, [pos] AS target_pos
FROM (
    SELECT user_idx, pos, item_idx,
           list(item_idx) OVER w AS input_items,
           list(pos) OVER w AS input_pos
    FROM sequences
    WHERE dataset = $dataset AND split = 'train'
    WINDOW w AS (PARTITION BY user_idx ORDER BY pos
                 ROWS BETWEEN $history PRECEDING AND 1 PRECEDING)
)
WHERE len(input_items) > 0
ORDER BY user_idx, pos;
