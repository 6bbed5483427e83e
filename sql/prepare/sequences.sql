-- Each user's events ordered by timestamp, ties broken by $tie_break: 'source' (the order of the
-- ingested files: batch, then line), 'item' (item_idx) or 'random' (a seeded hash); item_idx
-- settles whatever is left. Capped to the last $max_history events (0 = no cap) and labelled
-- train/valid/test: leave-one-out (last = test, second last = valid, for users with at least 3
-- events) or a global temporal cut.
CREATE OR REPLACE TEMP TABLE seq AS
WITH ordered AS (
    SELECT k.user_id, i.item_idx, k.ts,
           row_number() OVER (
               PARTITION BY k.user_id
               ORDER BY k.ts,
                        CASE WHEN $tie_break = 'source' THEN k.batch_id END,
                        CASE WHEN $tie_break = 'source' THEN k.line_no END,
                        CASE WHEN $tie_break = 'random' THEN hash(k.item_id, $tie_seed) END,
                        i.item_idx
           ) AS raw_pos,
           count(*) OVER (PARTITION BY k.user_id) AS raw_n
    FROM kc k JOIN idx i USING (item_id)
), capped AS (
    SELECT user_id, item_idx, ts,
           CAST(raw_pos - greatest(raw_n - $max_history, 0) * ($max_history > 0)::INTEGER AS INTEGER) AS pos,
           least(raw_n, CASE WHEN $max_history > 0 THEN $max_history ELSE raw_n END) AS n
    FROM ordered
    WHERE $max_history <= 0 OR raw_pos > raw_n - $max_history
)
SELECT user_id,
       CAST(dense_rank() OVER (ORDER BY TRY_CAST(user_id AS BIGINT) NULLS LAST, user_id) AS INTEGER)
           AS user_idx,
       pos, item_idx, ts,
       CASE WHEN $split = 'loo' THEN
                CASE WHEN n >= 3 AND pos = n THEN 'test'
                     WHEN n >= 3 AND pos = n - 1 THEN 'valid' ELSE 'train' END
            ELSE CASE WHEN ts >= $test_start THEN 'test'
                      WHEN ts >= $valid_start THEN 'valid' ELSE 'train' END
       END AS split
FROM capped;
